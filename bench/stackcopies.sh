#!/usr/bin/env bash
# stackcopies.sh: every goroutine stack copy (growth, and shrinking by the
# collector) a tollgate binary makes during a workload, counted by a uprobe
# on runtime.copystack, without stopping the process (gdb's breakpoints in
# bench/gdb/stackgrowth.gdb stop it at each copy, so they show where, not how
# many).
#
#   sudo bash bench/stackcopies.sh /tmp/tollgate [tollgate-bench flags]
#
# Default flags: --targets tollgate --workloads stream --duration 5s. Prints
# one line per (grow|shrink, goroutine's start function, old -> new size,
# the function that needed more stack), most frequent first, after the
# workload's result line: divide by its requests to get copies a request.
# Linux only; needs root, tracefs, perf (for perf probe), gdb (to read the
# runtime's g layout from the binary's DWARF) and python3.
set -euo pipefail
BIN=$(realpath "${1:?usage: stackcopies.sh TOLLGATE_BINARY [tollgate-bench flags]}")
shift
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--targets tollgate --workloads stream --duration 5s)
HERE=$(cd "$(dirname "$0")/.." && pwd)
TRACE=/sys/kernel/tracing
TMP=$(mktemp -d)
cleanup() {
	[ -n "${EV:-}" ] && { echo 0 >"$TRACE/events/$EV/enable" 2>/dev/null || true; perf probe -q -d "${EV/\//:}" 2>/dev/null || true; }
	rm -rf "$TMP"
}
trap cleanup EXIT

# Offsets in runtime.g differ by Go version: read them from this binary.
read -r SCHEDPC STARTPC < <(gdb -q -batch -ex "python
g = gdb.lookup_type('runtime.g')
f = {x.name: x.bitpos // 8 for x in g.fields()}
pc = {x.name: x.bitpos // 8 for x in gdb.lookup_type('runtime.gobuf').fields()}['pc']
print(f['sched'] + pc, f['startpc'])" "$BIN" 2>/dev/null | tail -1)
[ -n "$STARTPC" ] || { echo "could not read runtime.g's layout from $BIN" >&2; exit 1; }

cp "$BIN" "$TMP/tollgate"
# copystack(gp *g, newsize uintptr): gp in AX, newsize in BX (ABIInternal).
perf probe -q -x "$TMP/tollgate" --add "tgcopy=runtime.copystack newsize=%bx:u64 pc=+$SCHEDPC(%ax):u64 start=+$STARTPC(%ax):u64 lo=+0(%ax):u64 hi=+8(%ax):u64"
EV=$(cd "$TRACE/events" && ls -d probe_*/tgcopy | head -1)
(cd "$HERE" && go build -o "$TMP/bench" ./bench/cmd/tollgate-bench)
echo >"$TRACE/trace"
echo 1 >"$TRACE/events/$EV/enable"
"$TMP/bench" --tollgate "$TMP/tollgate" "${FLAGS[@]}" >"$TMP/run.txt" 2>&1 || { cat "$TMP/run.txt" >&2; exit 1; }
echo 0 >"$TRACE/events/$EV/enable"
grep -E '^ +[a-z0-9-]+ +tollgate ' "$TMP/run.txt" || true
grep -v '^#' "$TRACE/trace" | sed -nE 's/.*newsize=([0-9]+) pc=([0-9]+) start=([0-9]+) lo=([0-9]+) hi=([0-9]+).*/\1 \2 \3 \4 \5/p' >"$TMP/copies"
awk '{printf "0x%x\n0x%x\n", $2, $3}' "$TMP/copies" | sort -u >"$TMP/addrs"
go tool addr2line "$TMP/tollgate" <"$TMP/addrs" | paste - - | paste "$TMP/addrs" - >"$TMP/syms"
python3 - "$TMP/copies" "$TMP/syms" <<'PY'
import collections, sys
names = {}
for line in open(sys.argv[2]):
    addr, sym = line.rstrip('\n').split('\t')[:2]
    names[int(addr, 16)] = sym.split('/')[-1]
counts = collections.Counter()
for line in open(sys.argv[1]):
    new, pc, start, lo, hi = map(int, line.split())
    old = hi - lo
    grow = new > old
    counts[('grow' if grow else 'shrink', names.get(start, hex(start)), '%d -> %d' % (old, new),
            names.get(pc, hex(pc)) if grow else '')] += 1
print('%d stack copies' % sum(counts.values()))
for (kind, start, sizes, where), n in counts.most_common(20):
    print('%7d  %-6s %-45s %-14s %s' % (n, kind, start[:45], sizes, where[:60]))
PY
