package admin

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

type usageCalls struct {
	mu  sync.Mutex
	got []string
	err error
}

func (u *usageCalls) Usage(ctx context.Context, q store.UsageQuery) (store.UsageReport, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !q.EstimatePercentiles || q.Until.Sub(q.Since) <= 0 {
		return store.UsageReport{}, errors.New("not the overview's query")
	}
	u.got = append(u.got, q.GroupBy+"/"+q.Until.Sub(q.Since).Round(time.Hour).String())
	if err := ctx.Err(); err != nil {
		return store.UsageReport{}, err
	}
	return store.UsageReport{}, u.err
}

func TestWarmOverviewRunsTheOverviewQueries(t *testing.T) {
	u := &usageCalls{}
	if err := WarmOverview(t.Context(), u, time.UTC); err != nil {
		t.Fatal(err)
	}
	want := []string{"hour/24h0m0s", "model/24h0m0s", "key/24h0m0s", "hour/168h0m0s", "model/168h0m0s", "key/168h0m0s",
		"day/720h0m0s", "model/720h0m0s", "key/720h0m0s"}
	if len(u.got) != len(want) {
		t.Fatalf("queries %v; want %v", u.got, want)
	}
	for i := range want {
		if u.got[i] != want[i] {
			t.Errorf("query %d = %s; want %s", i, u.got[i], want[i])
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	u = &usageCalls{}
	if err := WarmOverview(ctx, u, time.UTC); !errors.Is(err, context.Canceled) || len(u.got) != 1 {
		t.Errorf("cancelled: err %v after %d queries; want it to stop at once", err, len(u.got))
	}
}
