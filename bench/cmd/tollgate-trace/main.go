// Command tollgate-trace lists the longest uninterrupted goroutine runs in
// an execution trace, grouped by where they ended: what held the P while
// requests waited. Take the trace from the debug listener under load:
//
//	curl -o gw.trace 'http://127.0.0.1:6061/debug/pprof/trace?seconds=5'
//	go run ./bench/cmd/tollgate-trace [-min 500us] [-top 20] gw.trace
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tollgate/tollgate/bench/tracerun"
)

func main() {
	threshold := flag.Duration("min", 500*time.Microsecond, "group runs at least this long")
	top := flag.Int("top", 20, "groups to print")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tollgate-trace [-min D] [-top N] TRACE")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-trace:", err)
		os.Exit(1)
	}
	defer f.Close()
	rep, err := tracerun.Analyze(f, *threshold)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-trace:", err)
		os.Exit(1)
	}
	rep.Print(os.Stdout, *threshold, *top)
}
