package responses

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenRequest declares every kind of tool the bridge handles.
const goldenRequest = `{"model":"gpt-test","stream":true,"store":false,"input":"hi",
"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}},
{"type":"namespace","name":"crm","description":"CRM","tools":[{"type":"function","name":"lookup","parameters":{"type":"object"}},{"type":"function","name":"ping"}]},
{"type":"custom","name":"apply_patch","description":"Patch files","format":{"type":"grammar","syntax":"lark","definition":"start: x"}},
{"type":"web_search"}]}`

func testDialect() *Dialect {
	return New(Options{
		Now:   func() time.Time { return time.Unix(1700000000, 0) },
		NewID: func() string { return "test" },
	})
}

var chatTarget = proxy.Target{Upstream: "up", API: proxy.APIOpenAI, Model: "gpt-test"}

// outbound parses body and builds the attempt at target.
func outbound(t testing.TB, d *Dialect, body string, target proxy.Target) (proxy.Request, *proxy.Outbound) {
	t.Helper()
	req, err := d.Parse(&proxy.Inbound{Method: "POST", Path: "/responses", Body: []byte(body)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out, err := req.Outbound(target)
	if err != nil {
		t.Fatalf("Outbound: %v", err)
	}
	return req, out
}

// runStream feeds an upstream event stream through st as the engine does and
// returns what the client receives.
func runStream(st proxy.Stream, upstream []byte, fail *apierr.Error) []byte {
	// One byte per read: the reader then reuses its buffer between events,
	// as it does on a live connection, which catches kept aliases.
	rd := sse.NewReader(iotest.OneByteReader(bytes.NewReader(upstream)))
	var out []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && fail == nil {
				fail = &apierr.Error{Status: 502, Type: apierr.Upstream, Code: "upstream_broken", Message: "the upstream stream broke"}
			}
			break
		}
		out, _ = st.Event(out, ev)
	}
	return st.End(out, fail)
}

// openItem is an output item as a transcript check follows it.
type openItem struct {
	id, kind   string
	text       []byte
	done       bool
	doneText   string
	doneSeen   bool
	partsAdded int
}

// checkTranscript verifies the protocol rules a client relies on: every event
// is JSON of the type its event line names, sequence numbers count up from 0,
// the stream starts with response.created and .in_progress and ends with
// exactly one terminal event, items open one at a time and close, deltas add
// up to the .done texts, and the terminal Response repeats the items and
// carries usage with its detail objects.
func checkTranscript(out []byte) error {
	rd := sse.NewReader(bytes.NewReader(out))
	var items []*openItem
	var seq int64
	terminal := false
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the transcript: %v", err)
		}
		if !ev.Dispatch {
			continue
		}
		if terminal {
			return fmt.Errorf("event after the terminal event: %s", ev.Data)
		}
		if !gjson.ValidBytes(ev.Data) {
			return fmt.Errorf("event %d is not JSON: %q", seq, ev.Data)
		}
		e := gjson.ParseBytes(ev.Data)
		typ := e.Get("type").String()
		if typ != ev.Event {
			return fmt.Errorf("event line %q, type %q", ev.Event, typ)
		}
		if e.Get("error").Exists() {
			return fmt.Errorf("top-level error member (SDKs read it as a stream error): %s", ev.Data)
		}
		if n := e.Get("sequence_number").Int(); n != seq || !e.Get("sequence_number").Exists() {
			return fmt.Errorf("%s: sequence_number %d, want %d", typ, n, seq)
		}
		switch {
		case seq == 0 && typ != "response.created", seq == 1 && typ != "response.in_progress":
			return fmt.Errorf("event %d is %s", seq, typ)
		}
		seq++
		if err := checkEvent(e, typ, &items); err != nil {
			return fmt.Errorf("%s (seq %d): %v", typ, seq-1, err)
		}
		switch typ {
		case "response.completed", "response.incomplete", "response.failed":
			terminal = true
			if err := checkFinal(e.Get("response"), typ, items); err != nil {
				return fmt.Errorf("%s: %v", typ, err)
			}
		}
	}
	if !terminal {
		return errors.New("no terminal event")
	}
	return nil
}

func checkEvent(e gjson.Result, typ string, items *[]*openItem) error {
	idx := int(e.Get("output_index").Int())
	get := func() (*openItem, error) {
		if idx < 0 || idx >= len(*items) {
			return nil, fmt.Errorf("output_index %d of %d items", idx, len(*items))
		}
		it := (*items)[idx]
		if it.done {
			return nil, errors.New("event for a closed item")
		}
		if id := e.Get("item_id"); id.Exists() && id.Str != it.id {
			return nil, fmt.Errorf("item_id %q, want %q", id.Str, it.id)
		}
		return it, nil
	}
	switch typ {
	case "response.output_item.added":
		if idx != len(*items) {
			return fmt.Errorf("output_index %d, want %d", idx, len(*items))
		}
		for _, it := range *items {
			if !it.done {
				return fmt.Errorf("item %s added while %s is open", e.Get("item.id"), it.id)
			}
		}
		*items = append(*items, &openItem{id: e.Get("item.id").Str, kind: e.Get("item.type").Str})
	case "response.content_part.added":
		it, err := get()
		if err != nil {
			return err
		}
		it.partsAdded++
	case "response.output_text.delta", "response.reasoning_text.delta",
		"response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		it, err := get()
		if err != nil {
			return err
		}
		it.text = append(it.text, e.Get("delta").Str...)
	case "response.output_text.done", "response.reasoning_text.done",
		"response.function_call_arguments.done", "response.custom_tool_call_input.done":
		it, err := get()
		if err != nil {
			return err
		}
		var got string
		for _, k := range []string{"text", "arguments", "input"} {
			if v := e.Get(k); v.Exists() {
				got = v.Str
			}
		}
		if got != string(it.text) {
			return fmt.Errorf("done text %q, deltas add up to %q", got, it.text)
		}
		it.doneText, it.doneSeen = got, true
	case "response.content_part.done":
		if _, err := get(); err != nil {
			return err
		}
	case "response.output_item.done":
		it, err := get()
		if err != nil {
			return err
		}
		if !it.doneSeen {
			return errors.New("output_item.done before the item's .done event")
		}
		if (it.kind == "message" || it.kind == "reasoning") && it.partsAdded != 1 {
			return fmt.Errorf("%d content parts added", it.partsAdded)
		}
		it.done = true
	}
	return nil
}

func checkFinal(resp gjson.Result, typ string, items []*openItem) error {
	if want := typ[len("response."):]; resp.Get("status").Str != want {
		return fmt.Errorf("status %q", resp.Get("status").Str)
	}
	out := resp.Get("output").Array()
	if len(out) != len(items) {
		return fmt.Errorf("%d output items, %d were streamed", len(out), len(items))
	}
	for i, it := range items {
		if !it.done {
			return fmt.Errorf("item %s never closed", it.id)
		}
		o := out[i]
		var text string
		switch o.Get("type").Str {
		case "message", "reasoning":
			text = o.Get("content.0.text").Str
		case "function_call":
			text = o.Get("arguments").Str
		case "custom_tool_call":
			text = o.Get("input").Str
		}
		if o.Get("id").Str != it.id || text != it.doneText {
			return fmt.Errorf("output[%d] = %s, streamed %s %q", i, o.Raw, it.id, it.doneText)
		}
	}
	u := resp.Get("usage")
	for _, k := range []string{"input_tokens", "input_tokens_details.cached_tokens", "output_tokens", "output_tokens_details.reasoning_tokens", "total_tokens"} {
		if !u.Get(k).Exists() {
			return fmt.Errorf("usage lacks %s: %s", k, u.Raw)
		}
	}
	if typ == "response.failed" && resp.Get("error.message").Str == "" {
		return errors.New("failed without an error message")
	}
	if typ == "response.incomplete" && resp.Get("incomplete_details.reason").Str == "" {
		return errors.New("incomplete without a reason")
	}
	return nil
}
