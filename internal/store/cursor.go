package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EncodeCursor builds the opaque ListLogs cursor for the last row of a page.
// Rows are ordered by (time, id) descending, so the pair is a stable keyset
// position: rows inserted later never shift it.
func EncodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

// DecodeCursor parses a cursor made by EncodeCursor.
func DecodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("store: invalid cursor: %w", err)
	}
	ts, id, ok := strings.Cut(string(raw), ":")
	if !ok {
		return time.Time{}, "", fmt.Errorf("store: invalid cursor")
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("store: invalid cursor: %w", err)
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// ClampLimit applies the LogFilter.Limit rules: 0 means 100, at most 1000.
func ClampLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// GroupLabel formats an hour bucket (unix seconds, UTC) for "day" and "hour" groupings.
func GroupLabel(groupBy string, hourUnix int64) string {
	t := time.Unix(hourUnix, 0).UTC()
	if groupBy == "day" {
		return t.Format(time.DateOnly)
	}
	return t.Format("2006-01-02T15:00:00Z")
}

// HourFloor returns t truncated to its UTC hour as unix seconds.
func HourFloor(t time.Time) int64 {
	s := t.Unix()
	return s - mod(s, 3600)
}

// HourCeil returns the first hour boundary at or after t as unix seconds.
func HourCeil(t time.Time) int64 {
	f := HourFloor(t)
	if time.Unix(f, 0).Equal(t) {
		return f
	}
	return f + 3600
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// FinishTotals fills the derived fields (CostUSD, percentiles) of t from its histogram.
func FinishTotals(t *UsageTotals, h [HistBuckets]int64) {
	t.CostUSD = float64(t.CostNanoUSD) / 1e9
	t.P50Ms = HistPercentile(h, 0.50)
	t.P95Ms = HistPercentile(h, 0.95)
	t.TTFTMsAvg = nil
	if t.TTFBCount > 0 {
		avg := float64(t.TTFBNanos) / float64(t.TTFBCount) / 1e6
		t.TTFTMsAvg = &avg
	}
}
