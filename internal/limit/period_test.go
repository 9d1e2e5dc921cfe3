package limit

import (
	"errors"
	"testing"
	"time"
)

// A daily budget in Asia/Shanghai resets at local midnight, 16:00 UTC, not
// at UTC midnight (08:00 in Beijing).
func TestBudgetDayInShanghai(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// 23:50 local on a day in the future (so Redis expiries hold).
	d := start.In(sh).AddDate(0, 0, 1)
	late := time.Date(d.Year(), d.Month(), d.Day(), 23, 50, 0, 0, sh)
	for _, b := range backendsIn(t, late, map[string]int64{}, sh) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			r, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 100)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, sh); !r.Start.Equal(want) || !r.End.Equal(want.AddDate(0, 0, 1)) {
				t.Errorf("period = [%v, %v); want the local day from %v", r.Start, r.End, want)
			}
			if err := b.bud.Settle(ctx, r, 100); err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(9 * time.Minute) // 23:59 local, 15:59 UTC
			r, err = b.bud.Reserve(ctx, "k", PeriodDay, 100, 1)
			if !errors.Is(err, ErrBudgetExceeded) || r.Spent != 100 || r.Remaining() != 0 {
				t.Fatalf("at 23:59 local: %+v, %v; want exceeded with 100 spent", r, err)
			}
			b.clock.Advance(time.Minute) // 00:00 local: a new day
			r, err = b.bud.Reserve(ctx, "k", PeriodDay, 100, 1)
			if err != nil || r.Spent != 0 {
				t.Fatalf("at local midnight: %+v, %v; want a fresh budget", r, err)
			}
			if got := r.Start.UTC(); got.Hour() != 16 {
				t.Errorf("the Shanghai day starts at %v UTC; want 16:00", got)
			}
			calls := b.spend.Calls()
			if last := calls[len(calls)-1]; !last.Equal(r.Start) {
				t.Errorf("ledger read since %v; want %v", last, r.Start)
			}
		})
	}
}

func TestPeriodStartIn(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		period string
		now    time.Time
		loc    *time.Location
		want   time.Time
	}{
		{PeriodDay, time.Date(2026, 3, 1, 15, 59, 0, 0, time.UTC), sh, time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC)},
		{PeriodDay, time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC), sh, time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)},
		{PeriodMonth, time.Date(2026, 3, 31, 16, 30, 0, 0, time.UTC), sh, time.Date(2026, 3, 31, 16, 0, 0, 0, time.UTC)},
		{PeriodDay, time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), ny, time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)},
		{PeriodDay, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC), nil, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := PeriodStartIn(tc.period, tc.now, tc.loc)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("PeriodStartIn(%s, %v, %v) = %v, %v; want %v", tc.period, tc.now, tc.loc, got, err, tc.want)
		}
	}
	// A DST day is 23 hours long, and still one period.
	s, _ := PeriodStartIn(PeriodDay, time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), ny)
	if got := PeriodEnd(PeriodDay, s).Sub(s); got != 23*time.Hour {
		t.Errorf("New York's spring-forward day lasts %v; want 23h", got)
	}
}
