package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/bench/load"
	"github.com/tollgate/tollgate/internal/fakeupstream"
)

// TestMain lets the test binary stand in for tollgate-bench when run()
// re-executes itself in the baseline or fake mode.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "baseline" || os.Args[1] == "fake") {
		// The parent stops children with SIGTERM, whose default action
		// ends this process; no signal handling is needed here.
		if err := dispatch(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(config) bool
	}{
		{"defaults", nil, false, func(c config) bool {
			return c.duration == 10*time.Second && c.rate == 1000 && c.highRate == 2000 && c.auth &&
				len(c.targets) == 3 && len(c.workloads) == 6 && c.idleStreams == 1000
		}},
		{"quick", []string{"--quick"}, false, func(c config) bool { return c.duration == 2*time.Second && c.idleStreams == 200 }},
		{"subset", []string{"--targets", "direct, baseline", "--workloads", "open"}, false, func(c config) bool {
			return len(c.targets) == 2 && c.targets[1] == "baseline" && len(c.workloads) == 1
		}},
		{"tollgate env", []string{"--tollgate-env", "A=1", "--tollgate-env", "B=2"}, false, func(c config) bool { return len(c.tollgateEnv) == 2 }},
		{"bad target", []string{"--targets", "nginx"}, true, nil},
		{"bad workload", []string{"--workloads", "soak"}, true, nil},
		{"unbounded duration", []string{"--duration", "1h"}, true, nil},
		{"zero rate", []string{"--rate", "0"}, true, nil},
		{"zero high rate", []string{"--high-rate", "0"}, true, nil},
		{"auth off", []string{"--auth=false"}, false, func(c config) bool { return !c.auth }},
		{"too many idle streams", []string{"--idle-streams", "50000"}, true, nil},
		{"one round by default", nil, false, func(c config) bool { return c.rounds == 1 }},
		{"three rounds", []string{"--rounds", "3"}, false, func(c config) bool { return c.rounds == 3 }},
		{"zero rounds", []string{"--rounds", "0"}, true, nil},
		{"too many rounds", []string{"--rounds", "10"}, true, nil},
		{"upstream TLS", []string{"--upstream-tls", "--targets", "baseline,tollgate"}, false, func(c config) bool { return c.upstreamTLS }},
		{"upstream TLS with direct", []string{"--upstream-tls"}, true, nil},
		{"not interleaved by default", nil, false, func(c config) bool { return c.interleave == 0 }},
		{"interleaved", []string{"--interleave", "10"}, false, func(c config) bool { return c.interleave == 10 }},
		{"too many turns", []string{"--interleave", "51"}, true, nil},
		{"negative turns", []string{"--interleave", "-1"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("parseFlags(%q) = %+v, %v", tt.args, c, err)
			}
		})
	}
}

func TestBaselineProxies(t *testing.T) {
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer up.Close()
	addr, err := load.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- baseline(ctx, []string{"--listen", addr, "--target", up.URL}, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("baseline: %v", err)
		}
	}()
	if err := waitTCP(t, addr); err != nil {
		t.Fatal(err)
	}
	// X-Fake-* headers must pass through the proxy, and the stream must
	// arrive event by event.
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("X-Fake-Chunks", "7")
	req.Header.Set("X-Fake-Chunk-Delay", "1ms")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			events++
		}
	}
	// The role chunk, 7 content chunks, the finish chunk and [DONE].
	if resp.StatusCode != http.StatusOK || events < 9 {
		t.Fatalf("status %d, %d events; want 200 and at least 9", resp.StatusCode, events)
	}

	// Many short streams: without the body fix about 1 in 70 was cut
	// mid-stream (golang/go#40747).
	spec := load.Spec{Name: "streams", Kind: load.Streams, Workers: 4, Duration: 700 * time.Millisecond,
		Body: []byte(body), MinEvents: 5, Header: http.Header{"X-Fake-Chunks": {"5"}, "X-Fake-Chunk-Delay": {"1ms"}}}
	r, err := load.Run(t.Context(), slog.New(slog.DiscardHandler), load.Target{Name: "baseline", BaseURL: "http://" + addr + "/v1"}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Requests < 50 {
		t.Fatalf("%d streams ok, %d failed (%s); want >= 50 and none", r.Requests, r.Errors, r.FirstError)
	}
}

func waitTCP(t *testing.T, addr string) error {
	check := load.TCPCheck(addr)
	var err error
	for range 100 {
		if err = check(t.Context()); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// TestRunEndToEnd runs the whole tool, tiny, against the direct and
// baseline targets: child processes, workloads, table and JSON.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rep := runBench(t, []string{
		"--targets", "direct,baseline", "--duration", "300ms", "--body-duration", "200ms", "--warmup", "0",
		"--rate", "100", "--high-rate", "150", "--workers", "4", "--streams", "4", "--stream-chunks", "5", "--body-workers", "2",
		"--idle-streams", "20", "--idle-hold", "50ms", "--settle", "0", "--pin=false",
	}, "open", "open-high", "saturation", "stream", "body200k", "idle", "baseline", "20 open", "target check")
	if len(rep.Results) != 12 {
		t.Fatalf("%d results, want 12 (6 workloads × 2 targets)", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Errors != 0 || r.Requests == 0 {
			t.Errorf("%s on %s: %d ok, %d errors (%s)", r.Workload, r.Target, r.Requests, r.Errors, r.FirstError)
		}
		if r.Target == load.Baseline && (!r.Proc || r.HWM == 0) {
			t.Errorf("%s on baseline: no process sample", r.Workload)
		}
	}
}

// TestRunRounds: --rounds runs every target once per round, in alternating
// order, and reports the checks of each round and their medians.
func TestRunRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rep := runBench(t, []string{
		"--targets", "direct,baseline", "--workloads", "open", "--duration", "200ms", "--warmup", "0",
		"--rate", "100", "--settle", "0", "--pin=false", "--rounds", "2",
	}, "round 1 of 2", "round 2 of 2", "median of 2 rounds")
	perRound := map[int][]string{}
	for _, r := range rep.Results {
		perRound[r.Round] = append(perRound[r.Round], r.Target)
		if r.Errors != 0 || r.Requests == 0 {
			t.Errorf("round %d %s: %d ok, %d errors", r.Round, r.Target, r.Requests, r.Errors)
		}
	}
	for _, round := range []int{1, 2} {
		if got := strings.Join(perRound[round], ","); got != "direct,baseline" {
			t.Errorf("round %d rows %q, want direct,baseline (table order)", round, got)
		}
	}
	if len(rep.RoundRatios) != 2 || len(rep.Ratios) != len(rep.RoundRatios[0]) {
		t.Errorf("%d rounds of checks, %d medians", len(rep.RoundRatios), len(rep.Ratios))
	}
}

// TestRunInterleaved: --interleave runs each workload in turns on targets
// that are up side by side, and sums the turns: a target's requests and
// latencies are those of all its turns, its process is sampled around each,
// and the idle workload is left out.
func TestRunInterleaved(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rep := runBench(t, []string{
		"--targets", "direct,baseline", "--workloads", "open,stream,idle", "--duration", "600ms", "--warmup", "0",
		"--rate", "100", "--streams", "2", "--stream-chunks", "3", "--settle", "0", "--pin=false", "--interleave", "3",
	}, "open", "stream", "target check")
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4 (open and stream × 2 targets; no idle)", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Workload == load.WorkloadIdle {
			t.Errorf("idle ran with --interleave")
		}
		if r.Errors != 0 || r.Requests == 0 || r.Latency.Count != r.Requests {
			t.Errorf("%s on %s: %d ok, %d errors, %d latencies", r.Workload, r.Target, r.Requests, r.Errors, r.Latency.Count)
		}
		// Three turns of 200 ms at 100 req/s: ~60 requests, not one turn's ~20.
		if r.Workload == load.WorkloadOpen && r.Requests < 45 {
			t.Errorf("open on %s: %d requests, want the three turns' ~60", r.Target, r.Requests)
		}
		if r.Target == load.Baseline && (!r.Proc || r.HWM == 0) {
			t.Errorf("%s on baseline: no process sample", r.Workload)
		}
	}
	if rep.Config["interleave"] != float64(3) {
		t.Errorf("report config interleave = %v", rep.Config["interleave"])
	}
}

// runBench runs the load tool with args and a JSON report, fails unless its
// printout holds every want, and returns the report.
func runBench(t *testing.T, args []string, wants ...string) load.Report {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	c, err := parseFlags(append(args, "--json", jsonPath), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), slog.New(slog.DiscardHandler), c, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var rep load.Report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("bad JSON: %v", err)
	}
	return rep
}

func TestRoundOrder(t *testing.T) {
	targets := []string{"direct", "baseline", "tollgate"}
	for round, want := range map[int]string{1: "direct,baseline,tollgate", 2: "tollgate,baseline,direct", 3: "direct,baseline,tollgate"} {
		if got := strings.Join(roundOrder(targets, round), ","); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if targets[0] != "direct" {
		t.Errorf("roundOrder changed its argument: %v", targets)
	}
}

// TestFakeOverTLS: with the certificate selfSigned makes, the fake mode
// speaks HTTPS and HTTP/2 to a client that trusts that certificate alone.
func TestFakeOverTLS(t *testing.T) {
	cert, key, err := selfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate file holds no certificate")
	}
	addr, err := load.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- fake(ctx, []string{"--listen", addr, "--tls-cert", cert, "--tls-key", key}, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fake: %v", err)
		}
	}()
	if err := waitTCP(t, addr); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("status %d over %s; want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}

// TestRunUpstreamTLS runs the tool with --upstream-tls: the baseline
// proxy, trusting the run's certificate, reaches the fake over HTTPS.
func TestRunUpstreamTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rep := runBench(t, []string{
		"--targets", "baseline", "--workloads", "open,idle", "--duration", "300ms", "--warmup", "0",
		"--rate", "100", "--idle-streams", "20", "--idle-hold", "50ms", "--settle", "0", "--pin=false", "--upstream-tls",
	}, "20 open")
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Errors != 0 || r.Requests == 0 {
			t.Errorf("%s: %d ok, %d errors (%s)", r.Workload, r.Requests, r.Errors, r.FirstError)
		}
	}
}
