package chat

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// wireMessage is one message of the upstream request.
type wireMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// messageOverhead is the per-message framing OpenAI-style chat formats add
// (role and separators), counted in the context budget.
const messageOverhead = 4

// buildMessages assembles the upstream messages: the system prompt, the
// newest history that fits the window and token budget, and the new user
// message (always sent, even if it alone exceeds the budget).
func (s *Service) buildMessages(system string, history []store.Message, message string) []wireMessage {
	if n := s.opts.ContextMessages; n < 0 {
		history = nil
	} else if len(history) > n {
		history = history[len(history)-n:]
	}
	if budget := int64(s.opts.ContextTokens); budget > 0 {
		used := s.tokens(message)
		if system != "" {
			used += s.tokens(system)
		}
		for _, m := range history {
			used += s.tokens(m.Content)
		}
		for len(history) > 0 && used > budget {
			used -= s.tokens(history[0].Content)
			history = history[1:]
		}
	}
	out := make([]wireMessage, 0, len(history)+2)
	if system != "" {
		out = append(out, wireMessage{Role: "system", Content: system})
	}
	for _, m := range history {
		out = append(out, wireMessage{Role: m.Role, Content: m.Content})
	}
	return append(out, wireMessage{Role: "user", Content: message})
}

func (s *Service) tokens(text string) int64 {
	return s.opts.Estimate([]byte(text)) + messageOverhead
}

// keyedLocks serializes calls per conversation within the process. An entry
// lives only while some call holds or waits for it, so the table is bounded
// by the calls in flight (and by max).
type keyedLocks struct {
	mu  sync.Mutex
	m   map[store.ConversationKey]*keyedLock
	max int
}

type keyedLock struct {
	ch   chan struct{} // a one-slot semaphore, so waiting can honour ctx
	refs int           // holders and waiters; guarded by keyedLocks.mu
}

var errTooManyConversations = errors.New("too many conversations in flight")

func newKeyedLocks(max int) *keyedLocks {
	return &keyedLocks{m: make(map[store.ConversationKey]*keyedLock), max: max}
}

// acquire waits for the conversation's lock until ctx ends.
func (l *keyedLocks) acquire(ctx context.Context, k store.ConversationKey) (release func(), err error) {
	l.mu.Lock()
	e := l.m[k]
	if e == nil {
		if len(l.m) >= l.max {
			l.mu.Unlock()
			return nil, errTooManyConversations
		}
		e = &keyedLock{ch: make(chan struct{}, 1)}
		l.m[k] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	case <-ctx.Done():
		l.drop(k, e)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.ch
			l.drop(k, e)
		})
	}, nil
}

func (l *keyedLocks) drop(k store.ConversationKey, e *keyedLock) {
	l.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, k)
	}
	l.mu.Unlock()
}

// size reports the entries in the table (for tests).
func (l *keyedLocks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// lock takes the conversation's lock, translating failures into answers.
func (s *Service) lock(ctx context.Context, ck store.ConversationKey) (func(), *apiError) {
	release, err := s.locks.acquire(ctx, ck)
	switch {
	case err == nil:
		return release, nil
	case errors.Is(err, errTooManyConversations):
		return nil, &apiError{Status: http.StatusServiceUnavailable, Message: "the gateway is busy; retry shortly",
			Header: http.Header{"Retry-After": {"1"}}}
	default:
		return nil, &apiError{Status: 499, Message: "the request was cancelled"}
	}
}

// remember appends a successful turn and trims the conversation. It outlives
// the client: the turn happened (and was billed) even if nobody waits now.
func (s *Service) remember(ctx context.Context, ck store.ConversationKey, user, reply string, asked time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	msgs := []store.Message{
		{Role: "user", Content: user, Time: asked.UTC()},
		{Role: "assistant", Content: reply, Time: time.Now().UTC()},
	}
	keep := s.opts.KeepMessages
	if keep < 0 {
		keep = 0 // the store's "keep all"
	}
	return s.opts.Store.AppendMessages(ctx, ck, msgs, keep)
}
