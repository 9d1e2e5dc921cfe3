package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/anthropic"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/responses"
)

// benchModel is routed by tollgate to the fake (an OpenAI-compatible
// upstream), so /v1/messages and /v1/responses are translated.
const benchModel = "gpt-4o-mini"

// shape is one request size, in each API.
type shape struct {
	name      string
	messages  []byte // POST /v1/messages
	responses []byte // POST /v1/responses
	// chatForMessages and chatForResponses are the chat completions that
	// tollgate sends upstream for the two: posting them to
	// /v1/chat/completions gives the same upstream work and the same reply,
	// so the difference in CPU is the translation.
	chatForMessages, chatForResponses []byte
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// lorem returns about n bytes of prose.
func lorem(n int) string {
	const s = "The quick brown fox jumps over the lazy dog while the build runs. "
	return strings.Repeat(s, n/len(s)+1)[:n]
}

// schema is a tool's JSON schema with a few typed properties.
func schema() map[string]any {
	return map[string]any{"type": "object", "required": []string{"path"}, "properties": map[string]any{
		"path":  map[string]any{"type": "string", "description": "The absolute path to the file"},
		"limit": map[string]any{"type": "number", "description": "How many lines to read"},
		"mode":  map[string]any{"type": "string", "enum": []string{"fast", "full"}},
	}}
}

// smallMessages is a one-line prompt.
func smallMessages(stream bool) map[string]any {
	return map[string]any{"model": benchModel, "max_tokens": 1024, "stream": stream,
		"messages": []any{map[string]any{"role": "user", "content": "Say hello to the load test."}}}
}

func smallResponses(stream bool) map[string]any {
	return map[string]any{"model": benchModel, "stream": stream, "store": false, "input": "Say hello to the load test."}
}

// agentMessages is shaped like a Claude Code turn (about 26 KB): a long
// system prompt in blocks, 14 tools, the working context as a system entry
// in messages, and a few turns of tool use with results.
func agentMessages(stream bool) map[string]any {
	var tools []any
	for i := range 14 {
		tools = append(tools, map[string]any{"name": fmt.Sprintf("Tool%d", i), "description": lorem(900), "input_schema": schema()})
	}
	return map[string]any{
		"model": benchModel, "max_tokens": 32000, "stream": stream,
		"metadata": map[string]any{"user_id": "user_bench_session_1"},
		"system": []any{
			map[string]any{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
			map[string]any{"type": "text", "text": lorem(6000), "cache_control": map[string]any{"type": "ephemeral"}},
		},
		"tools": tools,
		"messages": []any{
			map[string]any{"role": "system", "content": "<context>cwd: /repo\n" + lorem(600) + "</context>"},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "<system-reminder>" + lorem(400) + "</system-reminder>"},
				map[string]any{"type": "text", "text": "Read a.go and fix the failing test."}}},
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "text", "text": "Reading the file."},
				map[string]any{"type": "tool_use", "id": "toolu_1", "name": "Tool0", "input": map[string]any{"path": "/repo/a.go"}}}},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": lorem(2500)}}},
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "tool_use", "id": "toolu_2", "name": "Tool1", "input": map[string]any{"path": "/repo/a_test.go", "limit": 200}}}},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": "toolu_2", "content": lorem(2000)},
				map[string]any{"type": "text", "text": "Now fix it."}}},
		},
	}
}

// agentResponses is shaped like a Codex turn (about 24 KB): developer
// instructions, the environment context, the prompt, seven function tools,
// a namespace of tools and a hosted tool the bridge leaves out.
func agentResponses(stream bool) map[string]any {
	var tools []any
	for i := range 7 {
		tools = append(tools, map[string]any{"type": "function", "name": fmt.Sprintf("tool_%d", i), "description": lorem(900), "strict": false, "parameters": schema()})
	}
	tools = append(tools,
		map[string]any{"type": "namespace", "name": "mcp_github", "description": "GitHub", "tools": []any{
			map[string]any{"type": "function", "name": "search", "description": lorem(600), "parameters": schema()},
			map[string]any{"type": "function", "name": "get_file", "description": lorem(600), "parameters": schema()}}},
		map[string]any{"type": "web_search"})
	msg := func(role, text string) map[string]any {
		return map[string]any{"type": "message", "role": role, "content": []any{map[string]any{"type": "input_text", "text": text}}}
	}
	return map[string]any{
		"model": benchModel, "stream": stream, "store": false, "tools": tools, "tool_choice": "auto", "parallel_tool_calls": false,
		"reasoning": map[string]any{"summary": "auto"}, "include": []string{"reasoning.encrypted_content"},
		"prompt_cache_key": "0199a2b4-bench",
		"input": []any{
			msg("developer", lorem(7000)),
			msg("user", "<environment_context>\n  <cwd>/repo</cwd>\n  <shell>bash</shell>\n"+lorem(500)+"</environment_context>"),
			msg("user", "Read a.go and fix the failing test."),
			map[string]any{"type": "function_call", "call_id": "call_1", "name": "tool_0", "arguments": `{"path":"/repo/a.go"}`},
			map[string]any{"type": "function_call_output", "call_id": "call_1", "output": lorem(2500)},
			msg("user", "Now fix it."),
		},
	}
}

// translated returns the chat completion tollgate sends upstream for body
// on the given dialect.
func translated(d proxy.Dialect, path string, body []byte) ([]byte, error) {
	req, err := d.Parse(&proxy.Inbound{Method: http.MethodPost, Path: path, Body: body, Header: http.Header{}})
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out, err := req.Outbound(proxy.Target{Upstream: "bench", API: proxy.APIOpenAI, Model: benchModel})
	if err != nil {
		return nil, fmt.Errorf("translate %s: %w", path, err)
	}
	if out.Path != "/chat/completions" {
		return nil, fmt.Errorf("%s translated to %s, not chat completions", path, out.Path)
	}
	return out.Body, nil
}

// shapes builds every shape in each API, streamed or not.
func shapes(names []string, stream bool) ([]shape, error) {
	an, rs := anthropic.New(nil), responses.New(responses.Options{})
	var out []shape
	for _, n := range names {
		s := shape{name: n}
		switch n {
		case "small":
			s.messages, s.responses = mustJSON(smallMessages(stream)), mustJSON(smallResponses(stream))
		case "agent":
			s.messages, s.responses = mustJSON(agentMessages(stream)), mustJSON(agentResponses(stream))
		default:
			return nil, fmt.Errorf("%w: unknown shape %q (want small or agent)", errUsage, n)
		}
		var err error
		if s.chatForMessages, err = translated(an, anthropic.PathMessages, s.messages); err != nil {
			return nil, err
		}
		if s.chatForResponses, err = translated(rs, "/responses", s.responses); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
