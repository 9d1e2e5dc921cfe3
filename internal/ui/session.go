package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// Roles a session can have.
const (
	RoleAdmin = "admin"
	RoleKey   = "key" // a gateway key's holder: its own data, read-only
)

// session is one signed-in browser. The cookie carries a random id; the
// map is keyed by its SHA-256 so that a memory dump of the map alone does
// not hand out live cookies.
type session struct {
	role    string
	keyID   string // RoleKey only
	keyName string
	csrf    string // required in X-CSRF-Token on unsafe requests
	expires time.Time
}

// maxSessions bounds memory: at the cap, signing in drops the session
// closest to expiry.
const maxSessions = 10_000

// sessions is the in-memory session table. Sessions do not survive a
// restart; everyone signs in again.
type sessions struct {
	mu   sync.Mutex
	m    map[[32]byte]*session
	once map[[32]byte]time.Time // one-time login tokens and their expiry
}

func newSessions() *sessions {
	return &sessions{m: map[[32]byte]*session{}, once: map[[32]byte]time.Time{}}
}

// create stores s and returns the cookie value.
func (ss *sessions) create(s session, now time.Time) string {
	id := rand.Text() + rand.Text() // 2 x 130 bits
	s.csrf = rand.Text()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweep(now)
	if len(ss.m) >= maxSessions {
		var oldest [32]byte
		var t time.Time
		for k, v := range ss.m {
			if t.IsZero() || v.expires.Before(t) {
				oldest, t = k, v.expires
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = &s
	return id
}

// get returns a copy of the live session for a cookie value.
func (ss *sessions) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	h := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[h]
	if !ok {
		return session{}, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, h)
		return session{}, false
	}
	return *s, true
}

func (ss *sessions) delete(id string) {
	h := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	delete(ss.m, h)
	ss.mu.Unlock()
}

// sweep drops expired sessions and one-time tokens; ss.mu is held.
func (ss *sessions) sweep(now time.Time) {
	for k, v := range ss.m {
		if !now.Before(v.expires) {
			delete(ss.m, k)
		}
	}
	for k, exp := range ss.once {
		if !now.Before(exp) {
			delete(ss.once, k)
		}
	}
}

// newOnce stores a single-use login token valid until exp.
func (ss *sessions) newOnce(now, exp time.Time) string {
	t := rand.Text() + rand.Text()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweep(now)
	ss.once[sha256.Sum256([]byte(t))] = exp
	return t
}

// useOnce consumes a one-time token; it reports whether it was valid.
func (ss *sessions) useOnce(t string, now time.Time) bool {
	if t == "" {
		return false
	}
	h := sha256.Sum256([]byte(t))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, ok := ss.once[h]
	delete(ss.once, h)
	return ok && now.Before(exp)
}

// failLimiter counts failed sign-ins per client in fixed one-minute
// windows.
type failLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

// maxLimiterClients bounds the limiter's memory under a spray of addresses.
const maxLimiterClients = 100_000

func newFailLimiter(max int, window time.Duration) *failLimiter {
	return &failLimiter{max: max, window: window, m: map[string]*failWindow{}}
}

// blocked reports whether client has used up its failures, and when it may
// try again.
func (l *failLimiter) blocked(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[client]
	if !ok || now.Sub(w.start) >= l.window {
		return false, 0
	}
	if w.n >= l.max {
		return true, l.window - now.Sub(w.start)
	}
	return false, 0
}

// fail records a failed attempt by client.
func (l *failLimiter) fail(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[client]
	if !ok || now.Sub(w.start) >= l.window {
		if len(l.m) >= maxLimiterClients {
			for k, v := range l.m {
				if now.Sub(v.start) >= l.window {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) >= maxLimiterClients {
			return // still full of live windows: fail open rather than grow
		}
		w = &failWindow{start: now}
		l.m[client] = w
	}
	w.n++
}
