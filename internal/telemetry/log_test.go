package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	log, closer, err := NewLogger(&buf, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Info("request", "request_id", "req-1", slog.Int("status", 200), slog.Bool("stream", true))

	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v: %q", err, buf.String())
	}
	want := map[string]any{"level": "INFO", "msg": "request", "request_id": "req-1", "status": 200.0, "stream": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["time"].(string); !ok {
		t.Errorf("time missing: %v", got)
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	log, _, err := NewLogger(&buf, LogOptions{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("slow upstream", "upstream", "taotoken")
	line := buf.String()
	for _, want := range []string{"level=WARN", `msg="slow upstream"`, "upstream=taotoken", "time="} {
		if !strings.Contains(line, want) {
			t.Errorf("text line %q lacks %q", line, want)
		}
	}
	if strings.HasPrefix(line, "{") {
		t.Errorf("text format wrote JSON: %q", line)
	}
}

func TestLevelFiltering(t *testing.T) {
	tests := []struct {
		level string
		want  []string // messages that get through, of debug/info/warn/error
	}{
		{"", []string{"i", "w", "e"}},
		{"debug", []string{"d", "i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"WARN", []string{"w", "e"}},
		{"error", []string{"e"}},
	}
	for _, tc := range tests {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, _, err := NewLogger(&buf, LogOptions{Level: tc.level})
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e")
			if got := messages(t, buf.Bytes()); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBadLevel(t *testing.T) {
	if _, _, err := NewLogger(&bytes.Buffer{}, LogOptions{Level: "verbose"}); err == nil || !strings.Contains(err.Error(), "verbose") {
		t.Errorf("err = %v, want one naming the bad level", err)
	}
}

func messages(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for line := range bytes.Lines(b) {
		var rec struct{ Msg string }
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		out = append(out, rec.Msg)
	}
	return out
}

func TestFilesAndErrorFile(t *testing.T) {
	dir := t.TempDir()
	file, errFile := filepath.Join(dir, "tollgate.log"), filepath.Join(dir, "errors.log")
	var stderr bytes.Buffer
	log, closer, err := NewLogger(&stderr, LogOptions{Level: "debug", File: file, ErrorFile: errFile, MaxSizeMB: 5, MaxAgeDay: 3})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("d")
	log.Info("i")
	log.With("component", "ledger").Warn("w")
	log.WithGroup("g").Error("e", "k", "v")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}

	all := []string{"d", "i", "w", "e"}
	if got := messages(t, stderr.Bytes()); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("stderr got %v, want %v", got, all)
	}
	combined, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(t, combined); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("file got %v, want %v", got, all)
	}
	errs, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(t, errs); len(got) != 1 || got[0] != "e" {
		t.Errorf("error file got %v, want [e]", got)
	}
	if !bytes.Contains(errs, []byte(`"g":{"k":"v"}`)) {
		t.Errorf("error file lost the group: %s", errs)
	}
}

// TestRotation writes past MaxSizeMB (1 MB) and expects lumberjack to have
// moved the full file aside.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tollgate.log")
	log, closer, err := NewLogger(&bytes.Buffer{}, LogOptions{File: file, MaxSizeMB: 1, MaxAgeDay: 1})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for i := range 1200 { // ~1.2 MB, bounded
		log.LogAttrs(context.Background(), slog.LevelInfo, "fill", slog.Int("i", i), slog.String("pad", pad))
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 2 {
		t.Fatalf("files after 1.2 MB with max 1 MB: %v, want the live file and a backup", entries)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MB limit", e.Name(), info.Size())
		}
	}
}

// BenchmarkAccessLog is the cost of one access-log line shaped like the
// proxy's, JSON to a discarded writer, for the "logs on vs off" budget.
func BenchmarkAccessLog(b *testing.B) {
	log, _, err := NewLogger(io.Discard, LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", "01JZ6Q2V6D0B6W1Y3M3R0W4K5X"),
			slog.String("method", "POST"),
			slog.String("path", "/v1/chat/completions"),
			slog.String("key", "ci-bot"),
			slog.String("model", "gpt-4o"),
			slog.String("upstream", "taotoken"),
			slog.Bool("stream", true),
			slog.Int("status", 200),
			slog.String("outcome", "ok"),
			slog.Int("attempts", 1),
			slog.Int64("prompt_tokens", 1200),
			slog.Int64("completion_tokens", 300),
			slog.Bool("estimated", false),
			slog.Int64("cost_nano_usd", 2500000),
			slog.Float64("latency_ms", 1234.5),
			slog.Float64("ttfb_ms", 321.2),
			slog.String("error", ""),
		)
	}
}
