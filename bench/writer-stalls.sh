#!/usr/bin/env bash
# writer-stalls.sh: how long the ledger-writer child keeps the gateway's
# threads off the CPU, live (issue 14: "never a pause of more than 1 ms on
# the request path" from the writer, at 5000 rows/s).
#
#   bash bench/writer-stalls.sh TOLLGATE_BINARY [LABEL]
#
# Runs tollgate-bench's open workload (RATE req/s, default 5000) against
# tollgate alone, pinned to CPU 1 as the bench pins it, and from the 7th
# second records 5 s of scheduler events on CPU 1 (`perf sched record`).
# For every time a gateway thread waited to run (woken, not yet on the
# CPU), the time the writer child ran on the CPU meanwhile is the stall the
# child caused; the script prints how many waits it stretched by over
# 50 µs, the total, the maximum and how many by over 1 ms. Go's execution tracer cannot show these: a thread taken off
# the CPU looks like a long run there. Linux with perf only; run it alone
# on the machine (or under a shared flock).
set -euo pipefail
BIN=$(realpath "$1")
LABEL=${2:-run}
RATE=${RATE:-5000}
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$HERE" && go build -o "$TMP/bench" ./bench/cmd/tollgate-bench)
"$TMP/bench" -tollgate "$BIN" -targets tollgate -workloads open -rate "$RATE" -duration 16s -warmup 0s >"$TMP/bench.txt" 2>&1 &
bench=$!
gw="" child=""
for _ in $(seq 1 200); do
	gw=$(pgrep -f "^$BIN serve" | head -1 || true)
	child=$(pgrep -f "^$BIN ledger-writer" | head -1 || true)
	[ -n "$gw" ] && [ -n "$child" ] && break
	sleep 0.1
done
if [ -z "$child" ]; then
	echo "no ledger-writer child started" >&2
	wait $bench || true
	cat "$TMP/bench.txt" >&2
	exit 1
fi
sleep 6
perf sched record -C 1 -o "$TMP/sched.data" -- sleep 5 >/dev/null 2>&1
wait $bench
perf sched timehist -i "$TMP/sched.data" >"$TMP/hist.txt" 2>/dev/null
python3 - "$TMP/hist.txt" "$gw" "$child" "$LABEL" <<'PY'
import bisect, re, sys
hist, gw, child, label = sys.argv[1:]
line_re = re.compile(r'\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$')
runs, waits = [], []  # (start, end) in ms: the child on the CPU; a gateway thread waiting
for line in open(hist):
    m = line_re.match(line)
    if not m:
        continue
    end, task, sch, run = float(m.group(1)) * 1000, m.group(3), float(m.group(5)), float(m.group(6))
    if f'/{child}]' in task:
        runs.append((end - run, end))
    elif f'/{gw}]' in task and sch > 0:
        waits.append((end - sch, end))
runs.sort()
starts = [r[0] for r in runs]
stalls = []
for a, b in waits:
    held, i = 0.0, max(0, bisect.bisect_left(starts, a) - 1)
    while i < len(runs) and runs[i][0] < b:
        held += max(0.0, min(runs[i][1], b) - max(runs[i][0], a))
        i += 1
    if held > 0.05:
        stalls.append(held)
stalls.sort()
print(f"{label}: {len(stalls)} waits of gateway threads stretched over 50 µs by the writer child, "
      f"{sum(stalls):.1f} ms in all, max {stalls[-1] if stalls else 0:.2f} ms, "
      f"{sum(1 for s in stalls if s > 1)} over 1 ms (5 s)")
PY
grep "workload done" "$TMP/bench.txt" | sed 's/.*workload=open //'
