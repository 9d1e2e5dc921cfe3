package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// flushWriter is a ResponseWriter whose FlushError does what the case says.
type flushWriter struct {
	*httptest.ResponseRecorder
	err     error
	panicV  any
	flushed int
}

func (w *flushWriter) FlushError() error {
	if w.panicV != nil {
		panic(w.panicV)
	}
	w.flushed++
	if w.err != nil {
		return w.err
	}
	w.ResponseRecorder.Flush()
	return nil
}

func TestFlushOnFreshStack(t *testing.T) {
	errBroken := errors.New("broken pipe")
	tests := []struct {
		name      string
		w         *flushWriter
		wantErr   error
		wantPanic any
	}{
		{name: "flushes the header", w: &flushWriter{}},
		{name: "returns the flush error", w: &flushWriter{err: errBroken}, wantErr: errBroken},
		{name: "re-raises a panic on the caller", w: &flushWriter{panicV: http.ErrAbortHandler}, wantPanic: http.ErrAbortHandler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.ResponseRecorder = httptest.NewRecorder()
			tt.w.Header().Set("Content-Type", "text/event-stream")
			tt.w.WriteHeader(http.StatusOK)
			var got any
			err := func() (err error) {
				defer func() { got = recover() }()
				return flushOnFreshStack(http.NewResponseController(tt.w))
			}()
			if got != tt.wantPanic {
				t.Fatalf("panic = %v, want %v", got, tt.wantPanic)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantPanic == nil && tt.wantErr == nil && (tt.w.flushed != 1 || !tt.w.Flushed) {
				t.Fatalf("flushed %d times, recorder flushed %v; want once", tt.w.flushed, tt.w.Flushed)
			}
		})
	}
}
