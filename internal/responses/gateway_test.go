package responses

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	oa "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	rs "github.com/openai/openai-go/v3/responses"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

// These tests run the real engine with this dialect on /v1/responses and the
// OpenAI dialect on the rest of /v1, in front of the fake upstream, which
// speaks only chat completions (its /responses route is a plain echo).

const upstreamKey = "sk-upstream-SECRET-do-not-leak"

type ledgerRecorder struct {
	mu   sync.Mutex
	recs []ledger.Record
	ch   chan ledger.Record
}

func (r *ledgerRecorder) Record(rec ledger.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	r.ch <- rec
}

func (r *ledgerRecorder) next(t *testing.T) ledger.Record {
	t.Helper()
	select {
	case rec := <-r.ch:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no ledger record within 10s")
		return ledger.Record{}
	}
}

type gateway struct {
	fake *fakeupstream.Server
	url  string
	rec  *ledgerRecorder
	sdk  oa.Client
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{
		fake: fakeupstream.New(fakeupstream.Options{Chunks: 4, APIKey: upstreamKey}),
		rec:  &ledgerRecorder{ch: make(chan ledger.Record, 100)},
	}
	up := httptest.NewServer(g.fake)
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{
		Name: "fake", BaseURL: up.URL + "/v1", APIKey: upstreamKey,
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	px := &proxy.Proxy{
		Transport: proxy.NewTransport(), Recorder: g.rec, Logger: slog.New(slog.DiscardHandler),
		DefaultModel: "gpt-4o", MaxRetries: 1, Timeout: 10 * time.Second, MaxBody: 1 << 20,
		BackoffBase: time.Millisecond, Estimate: func(b []byte) int64 { return int64(len(b)+3) / 4 },
		Pool: func() proxy.Planner { return pool },
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", px.Handler(openai.Dialect{}))
	mux.Handle("POST /v1/responses", px.Handler(New(Options{})))
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	g.url = gw.URL
	g.sdk = oa.NewClient(option.WithBaseURL(gw.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return g
}

var weatherTool = rs.ToolParamOfFunction("get_weather",
	map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}, false)

func TestSDKNonStream(t *testing.T) {
	g := newGateway(t)
	ctx := t.Context()
	// Turn 1: the fake calls the first tool with {"input": <user text>}.
	resp, err := g.sdk.Responses.New(ctx, rs.ResponseNewParams{
		Model: "gpt-4o", Store: oa.Bool(false),
		Input: rs.ResponseNewParamsInputUnion{OfString: oa.String("weather in Paris?")},
		Tools: []rs.ToolUnionParam{weatherTool},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != "completed" || len(resp.Output) != 1 {
		t.Fatalf("response: %s", resp.RawJSON())
	}
	call := resp.Output[0].AsFunctionCall()
	if call.Type != "function_call" || call.Name != "get_weather" || call.Arguments != `{"input":"weather in Paris?"}` || call.CallID == "" {
		t.Fatalf("function call: %s", resp.Output[0].RawJSON())
	}
	if !strings.HasPrefix(resp.ID, "resp_") || resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens != 4 {
		t.Errorf("id %q usage %+v", resp.ID, resp.Usage)
	}
	g.rec.next(t)

	// Turn 2: the tool result goes back; no tools, so the fake answers text.
	out := rs.ResponseInputItemParamOfFunctionCallOutput("sunny")
	out.OfFunctionCallOutput.CallID = oa.String(call.CallID)
	resp, err = g.sdk.Responses.New(ctx, rs.ResponseNewParams{
		Model: "gpt-4o",
		Input: rs.ResponseNewParamsInputUnion{OfInputItemList: rs.ResponseInputParam{
			rs.ResponseInputItemParamOfMessage("weather in Paris?", rs.EasyInputMessageRoleUser),
			rs.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
			out,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.OutputText(); got != "echo: weather in Paris?" {
		t.Errorf("OutputText = %q", got)
	}
	g.rec.next(t)
	reqs := g.fake.Requests()
	last := string(reqs[len(reqs)-1].Body)
	for _, want := range []string{`"role":"tool","content":"sunny","tool_call_id":"` + call.CallID + `"`, `"tool_calls":[{"id":"` + call.CallID + `"`} {
		if !strings.Contains(last, want) {
			t.Errorf("upstream body lacks %s:\n%s", want, last)
		}
	}
}

func TestSDKStreaming(t *testing.T) {
	g := newGateway(t)
	stream := g.sdk.Responses.NewStreaming(t.Context(), rs.ResponseNewParams{
		Model: "gpt-4o", Store: oa.Bool(false),
		Input: rs.ResponseNewParamsInputUnion{OfString: oa.String("call it")},
		Tools: []rs.ToolUnionParam{weatherTool},
	}, option.WithHeader("Session-Id", "sess-9"), option.WithHeader("Thread-Id", "th-9"), option.WithHeader("X-Client-Request-Id", "cr-9"))
	var types []string
	var args strings.Builder
	var final rs.Response
	for stream.Next() {
		ev := stream.Current()
		if len(types) == 0 || types[len(types)-1] != ev.Type {
			types = append(types, ev.Type)
		}
		switch ev.Type {
		case "response.function_call_arguments.delta":
			args.WriteString(ev.Delta)
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := "response.created,response.in_progress,response.output_item.added,response.function_call_arguments.delta," +
		"response.function_call_arguments.done,response.output_item.done,response.completed"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("events %s\nwant   %s", got, want)
	}
	call := final.Output[0].AsFunctionCall()
	if args.String() != `{"input":"call it"}` || call.Arguments != args.String() || call.Name != "get_weather" {
		t.Errorf("deltas %q, final call %s", args.String(), final.Output[0].RawJSON())
	}
	if final.Usage.OutputTokens != 4 || final.Usage.InputTokens == 0 {
		t.Errorf("usage %+v", final.Usage)
	}
	rec := g.rec.next(t)
	if rec.CompletionTokens != 4 || rec.Estimated || !rec.Stream || rec.Endpoint != "/v1/responses" {
		t.Errorf("record %+v", rec)
	}
	up := g.fake.Requests()[0]
	for k, v := range map[string]string{"Session-Id": "sess-9", "Thread-Id": "th-9", "X-Client-Request-Id": "cr-9"} {
		if up.Header.Get(k) != v {
			t.Errorf("upstream header %s = %q, want %q", k, up.Header.Get(k), v)
		}
	}
	if !strings.Contains(string(up.Body), `"stream_options":{"include_usage":true}`) {
		t.Errorf("upstream body: %s", up.Body)
	}
}

func TestSDKStatefulRefused(t *testing.T) {
	g := newGateway(t)
	_, err := g.sdk.Responses.New(t.Context(), rs.ResponseNewParams{
		Model: "gpt-4o", Store: oa.Bool(true),
		Input: rs.ResponseNewParamsInputUnion{OfString: oa.String("hi")},
	})
	var apiErr *oa.Error
	if !asError(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "store" || !strings.Contains(apiErr.Message, "store:true") {
		t.Fatalf("err = %v", err)
	}
	if n := len(g.fake.Requests()); n != 0 {
		t.Errorf("%d upstream requests for a refused call", n)
	}
}

// TestLedgerBridgedEqualsDirect sends the same conversation as a Responses
// call and as the chat call it becomes: the ledger rows agree on tokens.
func TestLedgerBridgedEqualsDirect(t *testing.T) {
	for _, stream := range []bool{false, true} {
		g := newGateway(t)
		ctx := context.Background()
		params := rs.ResponseNewParams{Model: "gpt-4o", Input: rs.ResponseNewParamsInputUnion{OfString: oa.String("count my tokens please")}}
		if stream {
			s := g.sdk.Responses.NewStreaming(ctx, params)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := g.sdk.Responses.New(ctx, params); err != nil {
			t.Fatal(err)
		}
		bridged := g.rec.next(t)
		chat := oa.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oa.ChatCompletionMessageParamUnion{oa.UserMessage("count my tokens please")}}
		if stream {
			chat.StreamOptions = oa.ChatCompletionStreamOptionsParam{IncludeUsage: oa.Bool(true)}
			s := g.sdk.Chat.Completions.NewStreaming(ctx, chat)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := g.sdk.Chat.Completions.New(ctx, chat); err != nil {
			t.Fatal(err)
		}
		direct := g.rec.next(t)
		type row struct {
			Model, ModelUsed, Upstream                             string
			Prompt, Completion, Cached, Reasoning, Total, Attempts int64
			Estimated, Stream                                      bool
			Status                                                 int
			Outcome                                                ledger.Outcome
		}
		of := func(r ledger.Record) row {
			return row{r.Model, r.ModelUsed, r.Upstream, r.PromptTokens, r.CompletionTokens, r.CachedTokens,
				r.ReasoningTokens, r.TotalTokens, int64(r.Attempts), r.Estimated, r.Stream, r.Status, r.Outcome}
		}
		if of(bridged) != of(direct) {
			t.Errorf("stream=%v: bridged row %+v\ndirect row %+v", stream, of(bridged), of(direct))
		}
		if bridged.TotalTokens == 0 || bridged.Endpoint != "/v1/responses" || direct.Endpoint != "/v1/chat/completions" {
			t.Errorf("rows: %+v / %+v", bridged, direct)
		}
	}
}

func asError(err error, target **oa.Error) bool {
	e, ok := err.(*oa.Error)
	if ok {
		*target = e
	}
	return ok
}
