package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/store"
)

func msgs(role string, from, n int) []store.Message {
	var out []store.Message
	for i := range n {
		out = append(out, store.Message{Role: role, Content: fmt.Sprintf("m%d", from+i), Time: base().Add(time.Duration(from+i) * time.Second)})
	}
	return out
}

func contents(ms []store.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Content)
	}
	return out
}

func testConversations(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.ConversationKey{KeyID: "k1", User: "alice", Conversation: "default"}
	others := []store.ConversationKey{
		{KeyID: "k1", User: "bob", Conversation: "default"},
		{KeyID: "k2", User: "alice", Conversation: "default"},
		{KeyID: "k1", User: "alice", Conversation: "other"},
	}
	for i, o := range others {
		if err := s.AppendMessages(ctx, o, msgs("user", 100*(i+1), 2), 0); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		msgs  []store.Message
		keep  int
		limit int
		want  []string
	}{
		{msgs("user", 0, 2), 0, 0, []string{"m0", "m1"}},
		{msgs("assistant", 2, 3), 0, 3, []string{"m2", "m3", "m4"}},
		{msgs("user", 5, 1), 4, 0, []string{"m2", "m3", "m4", "m5"}},
		{nil, 4, 2, []string{"m4", "m5"}},
		{msgs("user", 6, 3), 2, 10, []string{"m7", "m8"}},
	}
	for i, st := range steps {
		if err := s.AppendMessages(ctx, a, st.msgs, st.keep); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		h, err := s.History(ctx, a, st.limit)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(st.want, contents(h)); d != "" {
			t.Errorf("step %d history (-want +got):\n%s", i, d)
		}
	}
	h, _ := s.History(ctx, a, 1)
	if len(h) != 1 || h[0].Role != "user" || !h[0].Time.Equal(base().Add(8*time.Second)) {
		t.Errorf("last message = %+v", h)
	}
	n, err := s.ClearHistory(ctx, a)
	if err != nil || n != 2 {
		t.Errorf("ClearHistory = %d, %v; want 2", n, err)
	}
	if h, _ := s.History(ctx, a, 0); len(h) != 0 {
		t.Errorf("after clear: %v", contents(h))
	}
	// Appending after a clear starts afresh.
	if err := s.AppendMessages(ctx, a, msgs("user", 50, 1), 0); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(ctx, a, 0); !slices.Equal(contents(h), []string{"m50"}) {
		t.Errorf("after re-append: %v", contents(h))
	}
	for i, o := range others {
		h, err := s.History(ctx, o, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{fmt.Sprintf("m%d", 100*(i+1)), fmt.Sprintf("m%d", 100*(i+1)+1)}
		if d := cmp.Diff(want, contents(h)); d != "" {
			t.Errorf("isolation %+v (-want +got):\n%s", o, d)
		}
	}
	if n, err := s.ClearHistory(ctx, store.ConversationKey{KeyID: "none"}); err != nil || n != 0 {
		t.Errorf("ClearHistory(empty) = %d, %v", n, err)
	}
}

func testConcurrentAppends(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := store.ConversationKey{KeyID: "k", User: "u", Conversation: "c"}
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m := []store.Message{
					{Role: "user", Content: fmt.Sprintf("w%d-%d-q", w, i), Time: base()},
					{Role: "assistant", Content: fmt.Sprintf("w%d-%d-a", w, i), Time: base()},
				}
				if err := s.AppendMessages(ctx, c, m, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h, err := s.History(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2*workers*each {
		t.Fatalf("history has %d messages, want %d", len(h), 2*workers*each)
	}
	// Each pair must stay adjacent and in order (appends are atomic).
	for i := 0; i < len(h); i += 2 {
		q, a := h[i].Content, h[i+1].Content
		if q[len(q)-1] != 'q' || a[:len(a)-1] != q[:len(q)-1] || a[len(a)-1] != 'a' {
			t.Fatalf("pair %d split: %q, %q", i/2, q, a)
		}
	}
}
