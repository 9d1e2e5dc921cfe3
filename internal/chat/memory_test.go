package chat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

func TestKeyedLocks(t *testing.T) {
	l := newKeyedLocks(2)
	a := store.ConversationKey{User: "a"}
	b := store.ConversationKey{User: "b"}
	c := store.ConversationKey{User: "c"}

	relA, err := l.acquire(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	// A waiter on a held lock gives up with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a held lock: %v, want deadline exceeded", err)
	}
	relB, err := l.acquire(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	// The table is bounded.
	if _, err := l.acquire(t.Context(), c); !errors.Is(err, errTooManyConversations) {
		t.Errorf("third conversation: %v, want errTooManyConversations", err)
	}
	// A waiter gets the lock when it is released.
	got := make(chan error, 1)
	go func() {
		rel, err := l.acquire(t.Context(), a)
		if err == nil {
			rel()
		}
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	relA()
	relA() // releasing twice is harmless
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
	relB()
	if n := l.size(); n != 0 {
		t.Errorf("%d entries left, want 0", n)
	}
}

func TestBuildMessages(t *testing.T) {
	hist := []store.Message{
		{Role: "user", Content: "aaaa"}, {Role: "assistant", Content: "bbbbbbbb"},
		{Role: "user", Content: "cccc"}, {Role: "assistant", Content: "dddddddd"},
	}
	// Estimate: len/4; each message costs that plus 4.
	tests := []struct {
		name    string
		context int
		tokens  int
		system  string
		want    int // history messages kept
	}{
		{"window larger than history", 10, 0, "", 4},
		{"window", 3, 0, "", 3},
		{"no history", -1, 0, "sys", 0},
		{"budget fits all", 10, 100, "", 4},
		// new 5 + d 6 + c 5 = 16; + b 6 = 22 > 21.
		{"budget drops oldest", 10, 21, "", 2},
		// system 5 + new 5 + d 6 = 16; + c 5 = 21 > 20.
		{"budget counts the system prompt", 10, 20, "ssss", 1},
		{"budget smaller than the new message", 10, 1, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{ContextMessages: tt.context, ContextTokens: tt.tokens,
				Estimate: func(b []byte) int64 { return int64(len(b) / 4) }})
			msgs := s.buildMessages(tt.system, hist, "eeee")
			sys := 0
			if tt.system != "" {
				sys = 1
				if msgs[0].Role != "system" || msgs[0].Content != tt.system {
					t.Errorf("first message %+v", msgs[0])
				}
			}
			if got := len(msgs) - 1 - sys; got != tt.want {
				t.Errorf("kept %d history messages, want %d", got, tt.want)
			}
			if last := msgs[len(msgs)-1]; last.Role != "user" || last.Content != "eeee" {
				t.Errorf("last message %+v", last)
			}
			if tt.want > 0 {
				if first := msgs[sys]; first.Content != hist[len(hist)-tt.want].Content {
					t.Errorf("history does not end with the newest messages: %+v", msgs)
				}
			}
		})
	}
}
