#!/usr/bin/env bash
# writer-cpu.sh: the SQLite writer child's CPU per row, live, at 5000 req/s.
#
#   bash bench/writer-cpu.sh TOLLGATE_BINARY [LABEL]
#
# Runs tollgate-bench's open workload at 5000 req/s for 22 s (no warm-up:
# a closed-loop warm-up starves the nice-19 child, see docs/perf.md) and,
# from the 6th second for 10 s, reads the `tollgate ledger-writer` child's
# CPU from /proc/PID/task/*/schedstat (ns, not 10 ms ticks), its context
# switches, and the rows written from the gateway's /metrics. A run is
# "valid" only if the child worked every second of the window (at least
# 40% of the window's median): when the starvation rule fires, the gateway
# inserts in-process and the child's CPU per row looks lower than it is.
# Linux only; run it alone on the machine (or under a shared flock).
set -euo pipefail
BIN=$(realpath "$1")
LABEL=${2:-run}
RATE=${RATE:-5000} # req/s; RATE=1000 shows the per-batch costs of smaller batches
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
METRICS=127.0.0.1:19109
(cd "$HERE" && go build -o "$TMP/bench" ./bench/cmd/tollgate-bench)
"$TMP/bench" -tollgate "$BIN" -targets tollgate -workloads open -rate "$RATE" -duration 22s -warmup 0s \
	-tollgate-env TOLLGATE_METRICS_LISTEN=$METRICS >"$TMP/bench.txt" 2>&1 &
bench=$!
child=""
for _ in $(seq 1 200); do
	child=$(pgrep -f "^$BIN ledger-writer" | head -1 || true)
	[ -n "$child" ] && break
	sleep 0.1
done
if [ -z "$child" ]; then
	echo "no ledger-writer child started" >&2
	wait $bench || true
	cat "$TMP/bench.txt" >&2
	exit 1
fi
cpu() { cat /proc/"$child"/task/*/schedstat | awk '{s += $1} END {print s}'; }
switches() { grep -h ctxt_switches /proc/"$child"/task/*/status | awk '{s += $2} END {print s}'; }
rows() { curl -s "http://$METRICS/metrics" | awk '/^tollgate_ledger_records_written_total/ {print $2}'; }
sleep 6
c0=$(cpu) r0=$(rows) s0=$(switches) t0=$(date +%s.%N)
per="" prev=$c0
for _ in $(seq 1 10); do
	sleep 1
	c=$(cpu)
	per="$per $(((c - prev) / 1000000))"
	prev=$c
done
c1=$(cpu) r1=$(rows) s1=$(switches) t1=$(date +%s.%N)
wait $bench
python3 - "$LABEL" "$c0" "$c1" "$r0" "$r1" "$s0" "$s1" "$t0" "$t1" "$per" <<'PY'
import sys
label, c0, c1, r0, r1, s0, s1, t0, t1, per = sys.argv[1:]
cpu, rows, sw = int(c1) - int(c0), float(r1) - float(r0), int(s1) - int(s0)
per = [int(x) for x in per.split()]
med = sorted(per)[len(per) // 2]
valid = med > 0 and all(p >= 0.4 * med for p in per)
print(f"{label}: {cpu / max(rows, 1):.0f} ns/row, {rows:.0f} rows ({rows / (float(t1) - float(t0)):.0f}/s), "
      f"{1000 * sw / max(rows, 1):.1f} switches per 1000 rows, child CPU ms per second {per}, valid={valid}")
PY
grep "workload done" "$TMP/bench.txt" | sed 's/.*workload=open //'
