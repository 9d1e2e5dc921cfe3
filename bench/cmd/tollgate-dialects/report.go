package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// pair is a translated API and the chat completion it becomes.
type pair struct{ chat, api string }

var pairs = []pair{{"chat (as messages)", "messages"}, {"chat (as responses)", "responses"}}

func median[T int64 | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writeTable prints, per mode and shape, each translated API next to its
// chat completion: median CPU per request and throughput over the rounds,
// and the median (min–max) of the per-round CPU ratios, as Markdown.
func writeTable(w io.Writer, rs []runResult) {
	fmt.Fprintln(w, "| mode | shape | API | req/s | CPU/request | chat CPU/request | ratio (min–max) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	type key struct{ mode, shape string }
	var keys []key
	for _, r := range rs {
		if k := (key{r.Mode, r.Shape}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		for _, p := range pairs {
			var chat, api []int64
			var rps []float64
			for _, r := range rs {
				if r.Mode != k.mode || r.Shape != k.shape {
					continue
				}
				switch r.Workload {
				case p.chat:
					chat = append(chat, int64(r.CPUPerRequest))
				case p.api:
					api = append(api, int64(r.CPUPerRequest))
					rps = append(rps, r.RPS)
				}
			}
			if len(api) == 0 || len(api) != len(chat) {
				continue
			}
			ratios := make([]float64, len(api))
			for i := range api {
				ratios[i] = float64(api[i]) / float64(max(chat[i], 1))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %v | %v | **%.2f** (%.2f–%.2f) |\n", k.mode, k.shape, p.api, median(rps),
				us(median(api)), us(median(chat)), median(ratios), slices.Min(ratios), slices.Max(ratios))
		}
	}
}

func us(ns int64) string { return fmt.Sprintf("%.0f µs", float64(ns)/float64(time.Microsecond)) }
