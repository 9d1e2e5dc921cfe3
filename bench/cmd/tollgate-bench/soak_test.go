package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSoakShort is the soak in small: 20 s at 100 req/s against tollgate
// built from this checkout on PostgreSQL and Redis (each through a relay),
// 5 s outages of each, SIGTERM with streams in flight; every target must
// pass.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes about a minute")
	}
	for _, k := range []string{"TOLLGATE_TEST_POSTGRES_URL", "TOLLGATE_TEST_REDIS_URL"} {
		if os.Getenv(k) == "" {
			t.Skipf("set %s to run the soak", k)
		}
	}
	jsonPath := filepath.Join(t.TempDir(), "soak.json")
	args := []string{"-duration", "20s", "-rate", "100", "-pg-outage", "5s", "-redis-outage", "5s",
		"-drain-timeout", "5s", "-drain-short", "2s", "-drain-long", "15s", "-drain-streams", "10", "-json", jsonPath}
	var out, logs bytes.Buffer
	err := dispatch(t.Context(), append([]string{"soak"}, args...), &out, &logs)
	t.Logf("soak printout:\n%s", out.String())
	if err != nil {
		t.Fatalf("soak: %v\nlogs:\n%s", err, logs.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep soakReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if len(rep.Targets) < 5 {
		t.Fatalf("report has %d targets, want the issue's 5 and more", len(rep.Targets))
	}
	for _, tg := range rep.Targets {
		if !tg.Pass {
			t.Errorf("target %s: want %s, got %s", tg.Name, tg.Want, tg.Got)
		}
	}
	// The outages must have happened, or the targets prove nothing.
	if len(rep.Outages) != 2 || rep.Relays["postgres"].Refused == 0 || rep.Relays["redis"].Refused == 0 {
		t.Errorf("outages %d, relays %+v: want both dependencies cut and connections refused", len(rep.Outages), rep.Relays)
	}
	if rep.Ledger.Rows == 0 || rep.Drain.CutByDrain == 0 || rep.Drain.Completed == 0 {
		t.Errorf("ledger %d rows, drain %+v: want rows and streams both completed and cut by the drain", rep.Ledger.Rows, rep.Drain)
	}
}

func TestParseSoakFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(soakConfig) bool
	}{
		{"defaults", nil, false, func(c soakConfig) bool {
			return c.duration == 10*time.Minute && c.rate == 1000 && c.pgOutage == 30*time.Second &&
				c.redisOutage == 30*time.Second && c.pgAt == 0.3 && c.redisAt == 0.6 && c.deadline == 30*time.Second
		}},
		{"short", []string{"-duration", "20s", "-rate", "100", "-pg-outage", "5s"}, false, func(c soakConfig) bool {
			return c.duration == 20*time.Second && c.rate == 100 && c.pgOutage == 5*time.Second
		}},
		{"unbounded duration", []string{"-duration", "5h"}, true, nil},
		{"too many requests", []string{"-duration", "2h", "-rate", "10000"}, true, nil},
		{"outage outside the run", []string{"-pg-at", "1.5"}, true, nil},
		{"negative outage", []string{"-redis-outage", "-1s"}, true, nil},
		{"stray argument", []string{"now"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseSoakFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestSoakRequestMix(t *testing.T) {
	c := soakConfig{streamChunks: 7, streamDelay: time.Millisecond}
	failing, streams, healthy := 0, 0, 0
	models := map[string]bool{}
	for i := range 1000 {
		r := soakRequest(c, "run", i)
		if r.id != "soak-run-"+strconv.Itoa(i) {
			t.Fatalf("request %d id %q", i, r.id)
		}
		var body struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Model != r.model || body.Stream != r.stream {
			t.Fatalf("request %d body %s (%v)", i, r.body, err)
		}
		if r.model == healthyModel {
			healthy++
			if r.stream {
				streams++
				if r.minEvents != 7 || r.header.Get("X-Fake-Chunks") != "7" {
					t.Errorf("healthy stream %d: minEvents %d, header %v", i, r.minEvents, r.header)
				}
			}
			continue
		}
		failing++
		models[r.model] = true
		if r.header.Get("X-Fake-Status") == "" && r.header.Get("X-Fake-Reset") == "" {
			t.Errorf("failing request %d has no fault header: %v", i, r.header)
		}
	}
	if failing != 200 || healthy != 800 || streams != 400 || len(models) != len(failKinds) {
		t.Errorf("mix: %d failing over %d models, %d healthy of which %d streams; want 200 over %d, 800, 400",
			failing, len(models), healthy, streams, len(failKinds))
	}
}

func TestResultOutcome(t *testing.T) {
	tests := []struct {
		res  result
		want string
	}{
		{result{status: 200, done: true}, "200"},
		{result{status: 503, done: true}, "503"},
		{result{status: 200, events: 3, err: io.ErrUnexpectedEOF}, "200 cut after 3 events (eof)"},
		{result{err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "no answer: reset"},
		{result{err: &net.OpError{Op: "dial", Err: context.DeadlineExceeded}}, "no answer: dial timeout"},
		{result{err: context.DeadlineExceeded, deadline: true}, "no answer: client deadline"},
		{result{status: 200, events: 5, err: context.DeadlineExceeded, deadline: true}, "200 cut after 5 events (client deadline)"},
		{result{err: http.ErrHandlerTimeout}, "no answer: other"},
	}
	for _, tt := range tests {
		if got := tt.res.outcome(); got != tt.want {
			t.Errorf("%+v: outcome %q, want %q", tt.res, got, tt.want)
		}
	}
}

func TestWithURL(t *testing.T) {
	got := withURL("postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "127.0.0.1:9", "search_path", "s1")
	if got != "postgres://postgres@127.0.0.1:9/test?search_path=s1&sslmode=disable" {
		t.Errorf("withURL = %q", got)
	}
	if got := withURL("redis://127.0.0.1:6379/0", "127.0.0.1:9", "", ""); got != "redis://127.0.0.1:9/0" {
		t.Errorf("withURL = %q", got)
	}
}

// TestSoakRSSTarget: growth from the middle to the end sample passes at up
// to +20%, or at up to rssSlack on a heap small enough for one GC cycle to
// move it more; a fall always passes.
func TestSoakRSSTarget(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name     string
		mid, end int64
		want     bool
	}{
		{"small growth", 100 * mb, 110 * mb, true},
		{"20 percent", 100 * mb, 120 * mb, true},
		{"leak on a big heap", 100 * mb, 130 * mb, false},
		{"GC cycle on a small heap", 28 * mb, 34 * mb, true},
		{"past the slack on a small heap", 28 * mb, 28*mb + rssSlack + mb, false},
		{"fall", 50 * mb, 30 * mb, true},
		{"no end sample", 50 * mb, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := soakReport{Samples: []sample{{Label: "middle", RSS: tc.mid}}}
			if tc.end > 0 {
				r.Samples = append(r.Samples, sample{Label: "end", RSS: tc.end})
			}
			r.judge(soakConfig{})
			for _, tg := range r.Targets {
				if strings.HasPrefix(tg.Name, "RSS end vs middle") {
					if tg.Pass != tc.want {
						t.Fatalf("pass = %v, want %v (%s)", tg.Pass, tc.want, tg.Got)
					}
					return
				}
			}
			t.Fatal("no RSS target")
		})
	}
}
