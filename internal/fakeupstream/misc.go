package fakeupstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	defaultDims = 8
	maxDims     = 4096
	maxInputs   = 2048
	// modelsCreated is a fixed creation time so the model list is stable.
	modelsCreated = 1735689600 // 2025-01-01
)

// modelList builds the GET .../models body once.
func modelList(models []string) []byte {
	b := []byte(`{"object":"list","data":[`)
	for i, m := range models {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendModel(b, m)
	}
	return append(b, "]}"...)
}

func appendModel(b []byte, id string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, modelsCreated, 10)
	return append(b, `,"owned_by":"fakeupstream"}`...)
}

// model answers GET .../models/{id}.
func (s *Server) model(c *call, id string) {
	if !slices.Contains(s.opts.Models, id) {
		writeErrorParam(c.w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			"The model `"+id+"` does not exist or you do not have access to it.")
		return
	}
	c.writeBody(http.StatusOK, appendModel(nil, id))
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// embeddingInputs splits the input into items: a string, an array of
// strings, an array of token ids, or an array of token arrays. Each item is
// kept as its raw JSON (hashing raw JSON is as deterministic as hashing text).
func embeddingInputs(raw json.RawMessage) ([][]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	if raw[0] != '[' {
		return [][]byte{raw}, raw[0] == '"'
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 || len(items) > maxInputs {
		return nil, false
	}
	if c := bytes.TrimSpace(items[0]); len(c) > 0 && (c[0] == '-' || c[0] >= '0' && c[0] <= '9') {
		return [][]byte{raw}, true // one array of token ids
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out, true
}

// embeddings answers with unit vectors derived from an FNV hash of each input.
func (s *Server) embeddings(c *call) {
	var req embeddingRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.badJSON(err)
		return
	}
	if !c.checkModel(req.Model) {
		return
	}
	inputs, ok := embeddingInputs(req.Input)
	if !ok {
		writeErrorParam(c.w, http.StatusBadRequest, "invalid_request_error", "", "input",
			"'input' must be a non-empty string or array of strings or tokens")
		return
	}
	dims := defaultDims
	if req.Dimensions > 0 {
		dims = min(req.Dimensions, maxDims)
	}
	b := []byte(`{"object":"list","data":[`)
	size := 0
	vec := make([]float32, dims)
	for i, in := range inputs {
		size += len(in)
		embed(vec, in)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if req.EncodingFormat == "base64" {
			raw := make([]byte, 4*dims)
			for j, v := range vec {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(v))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			for j, v := range vec {
				b = append(b, "[,"[min(j, 1)])
				b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendString(b, req.Model)
	tokens := promptTokens(size)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	c.writeBody(http.StatusOK, append(b, "}}"...))
}

// embed fills vec with a unit vector determined by in.
func embed(vec []float32, in []byte) {
	h := fnv.New64a()
	h.Write(in) //nolint:errcheck // hash writes never fail
	x := h.Sum64()
	var norm float64
	for i := range vec {
		x += 0x9E3779B97F4A7C15 // splitmix64
		z := x
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		f := float64(z>>11)/float64(1<<53)*2 - 1
		vec[i] = float32(f)
		norm += f * f
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		return
	}
	for i := range vec {
		vec[i] = float32(float64(vec[i]) / norm)
	}
}

// echo answers any other path: a JSON summary of the request, or, when the
// request asks to stream, a short SSE stream, so a gateway's verbatim
// passthrough of endpoints it does not know can be tested both ways.
func (s *Server) echo(c *call) {
	var head struct {
		Stream bool `json:"stream"`
	}
	if bytes.Contains(c.body, []byte(`"stream"`)) {
		json.Unmarshal(c.body, &head) //nolint:errcheck // non-JSON bodies are echoed too
	}
	if head.Stream || strings.Contains(c.r.Header.Get("Accept"), "text/event-stream") {
		st := c.startStream()
		for i := range 3 {
			b := append(st.data(), `{"object":"echo.chunk","index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"path":`...)
			b = appendString(b, c.r.URL.Path)
			if !st.send(append(b, '}')) {
				return
			}
		}
		st.doneEvent()
		return
	}
	b := []byte(`{"object":"echo","method":`)
	b = appendString(b, c.r.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, c.r.URL.Path)
	b = append(b, `,"body_bytes":`...)
	b = strconv.AppendInt(b, int64(len(c.body)), 10)
	c.writeBody(http.StatusOK, append(b, '}'))
}
