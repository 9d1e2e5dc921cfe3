package admin

import (
	"context"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// UsageReader is the part of the store WarmOverview reads.
type UsageReader interface {
	Usage(ctx context.Context, q store.UsageQuery) (store.UsageReport, error)
}

// WarmOverview runs the dashboard overview's queries once (the default
// ranges and groupings), so the store's per-bucket usage cache is filled
// before the first person opens the page: a cold 7-day or 30-day overview
// over millions of rows otherwise takes the better part of a second. It
// stops at the first error or when ctx ends; errors are the caller's to
// ignore (the page then simply reads cold).
func WarmOverview(ctx context.Context, st UsageReader, loc *time.Location) error {
	now := time.Now()
	for _, r := range []struct {
		span   time.Duration
		bucket string
	}{{24 * time.Hour, "hour"}, {7 * 24 * time.Hour, "hour"}, {30 * 24 * time.Hour, "day"}} {
		for _, group := range []string{r.bucket, "model", "key"} {
			q := store.UsageQuery{Since: now.Add(-r.span), Until: now, GroupBy: group, Location: loc, EstimatePercentiles: true}
			if _, err := st.Usage(ctx, q); err != nil {
				return err
			}
		}
	}
	return nil
}
