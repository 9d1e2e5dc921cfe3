// Package telemetry sets up tollgate's structured logging: JSON or text on
// stderr, plus optional rotated files (a combined one and an error-only one).
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// LogOptions configure NewLogger.
type LogOptions struct {
	Format    string // "json" (default) or "text"
	Level     string // debug, info (default), warn, error
	File      string // also log here, rotated by size and age
	ErrorFile string // errors only, rotated
	MaxSizeMB int    // rotate at this size (default 100)
	MaxAgeDay int    // delete rotated files older than this (default 14)
	// FlushInterval, when positive, buffers log output and writes it out at
	// least this often (and at Close), trading that much delay for far fewer
	// write syscalls. Zero writes every line at once.
	FlushInterval time.Duration
}

// NewLogger builds the logger. The returned closer closes any log files.
func NewLogger(stderr io.Writer, o LogOptions) (*slog.Logger, io.Closer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(orDefault(o.Level, "info")))); err != nil {
		return nil, nil, fmt.Errorf("log level %q: %w", o.Level, err)
	}
	handler := func(w io.Writer, l slog.Level) slog.Handler {
		ho := &slog.HandlerOptions{Level: l}
		if o.Format == "text" {
			return slog.NewTextHandler(w, ho)
		}
		return slog.NewJSONHandler(w, ho)
	}
	var closers multiCloser
	out := stderr
	if o.FlushInterval > 0 {
		bw := newBufferedWriter(stderr, 64<<10, o.FlushInterval)
		closers = append(closers, bw)
		out = bw
	}
	handlers := []slog.Handler{handler(out, level)}
	for _, f := range []struct {
		path  string
		level slog.Level
	}{{o.File, level}, {o.ErrorFile, slog.LevelError}} {
		if f.path == "" {
			continue
		}
		lj := &lumberjack.Logger{Filename: f.path, MaxSize: orInt(o.MaxSizeMB, 100), MaxAge: orInt(o.MaxAgeDay, 14)}
		var fw io.Writer = lj
		if o.FlushInterval > 0 {
			bw := newBufferedWriter(lj, 64<<10, o.FlushInterval)
			closers = append(closers, bw) // flushed before lj closes: closers run in order
			fw = bw
		}
		closers = append(closers, lj)
		handlers = append(handlers, handler(fw, f.level))
	}
	if len(handlers) == 1 {
		return slog.New(handlers[0]), closers, nil
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closers, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orInt(n, d int) int {
	if n <= 0 {
		return d
	}
	return n
}
