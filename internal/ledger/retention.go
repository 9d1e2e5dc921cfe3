package ledger

import (
	"context"
	"log/slog"
	"time"
)

// LogDeleter deletes old raw ledger rows; the store implements it.
type LogDeleter interface {
	DeleteLogsBefore(ctx context.Context, t time.Time, limit int) (int, error)
}

// RetentionBatch is how many rows one DELETE removes, small enough that the
// writer is never blocked for long behind it.
const RetentionBatch = 5000

// RunRetention deletes raw rows older than keep, now and then every every,
// until ctx ends. Each pass deletes in batches of RetentionBatch until
// nothing older remains. keep <= 0 disables it (it returns at once).
func RunRetention(ctx context.Context, d LogDeleter, keep, every time.Duration, logger *slog.Logger) {
	if keep <= 0 {
		return
	}
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := retentionPass(ctx, d, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("ledger: retention", slog.Int("deleted", n), slog.Any("err", err))
		case n > 0:
			logger.Info("ledger: retention", slog.Int("deleted", n), slog.Duration("keep", keep))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionPass deletes everything before cutoff, batch by batch.
func retentionPass(ctx context.Context, d LogDeleter, cutoff time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := d.DeleteLogsBefore(ctx, cutoff, RetentionBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < RetentionBatch {
			break
		}
	}
	return total, ctx.Err()
}
