#!/usr/bin/env bash
# writer-instructions.sh: instructions per ledger row on SQLite, counted,
# not timed, so that two builds compare on any machine, busy or not.
#
#   bash bench/writer-instructions.sh [BENCH] [TOP]
#
# Runs BenchmarkInsertWriterProcess/batch=1000 (the writer process's insert
# path, in-process) under valgrind's callgrind twice, for 10 and for 30
# batches, and prints (instructions of 30 - instructions of 10) / 20,000
# rows: the start-up, migrations and statement preparation cancel out. GC is
# off and GOMAXPROCS=1, so that the count repeats (two runs differed by
# 0.05%). Only user-space instructions count: the kernel's side of the
# WAL's pwrite calls is not in it (bench/writer-cpu.sh measures that, live).
# The benchmark's own record making (fmt.Sprintf of ids) is ~2,300 a row.
# TOP (default 12) lists the functions with the most instructions a row.
set -euo pipefail
BENCH=${1:-InsertWriterProcess/batch=1000}
TOP=${2:-12}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$HERE/internal/store/sqlite" && go test -c -o "$TMP/sqlite.test" .)
for n in 10 30; do
	(cd "$TMP" && GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
		--callgrind-out-file="$TMP/cg.$n" ./sqlite.test -test.run '^$' -test.bench "^Benchmark$BENCH\$" \
		-test.benchtime ${n}x >"$TMP/run.$n" 2>&1) || { cat "$TMP/run.$n" >&2; exit 1; }
	callgrind_annotate --auto=no --threshold=100 "$TMP/cg.$n" >"$TMP/flat.$n" 2>/dev/null
done
python3 - "$TMP/flat.30" "$TMP/flat.10" "$TOP" <<'PY'
import re, sys
def load(path):
    total, fns = 0, {}
    for line in open(path):
        m = re.match(r'\s*([\d,]+) \([^)]*\)\s+(\S.*)$', line)
        if not m:
            continue
        n = int(m.group(1).replace(',', ''))
        if 'PROGRAM TOTALS' in line:
            total = n
        else:
            fns[m.group(2).strip()] = fns.get(m.group(2).strip(), 0) + n
    return total, fns
(t30, f30), (t10, f10) = load(sys.argv[1]), load(sys.argv[2])
rows = 20000
print(f"instructions a row: {(t30 - t10) / rows:.0f}  (30 batches {t30:,}, 10 batches {t10:,})")
per = sorted(((f30.get(k, 0) - f10.get(k, 0)) / rows, k) for k in set(f30) | set(f10))
for v, k in reversed(per[-int(sys.argv[3]):]):
    k = re.sub(r'\s*\[.*\]$', '', k.split(':', 1)[-1])
    print(f"  {v:7.0f}  {k}")
PY
