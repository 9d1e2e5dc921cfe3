# Goroutine stacks of a running gateway, by start function: how many, the
# stack's size, and how much of it is in use (bytes above the saved stack
# pointer, in 256-byte steps). The runtime halves a stack at a collection
# only when less than a quarter of it is in use, counting an 800-byte guard
# (shrinkstack), so "size 8192 used~ 2560" is a stack that stays 8 KB
# (docs/perf.md, thirteenth session). Attach to a gateway of your own while
# its streams are open:
#   timeout 120 gdb -q -batch -p PID -x bench/gdb/stacks.gdb 2>&1 | grep '^STK'
set pagination off
python
import gdb, collections
def name(pc):
    b = gdb.block_for_pc(pc)
    while b and not b.function:
        b = b.superblock
    return b.function.name if b else hex(pc)
allgs = gdb.parse_and_eval("'runtime.allgs'")
arr, n = allgs['array'], int(allgs['len'])
agg, names = collections.Counter(), {}
for i in range(n):
    gp = arr[i].dereference()
    if int(gp['atomicstatus']['value']) == 6:  # _Gdead
        continue
    lo, hi = int(gp['stack']['lo']), int(gp['stack']['hi'])
    pc = int(gp['startpc'])
    if pc not in names:
        names[pc] = name(pc)
    used = (hi - int(gp['sched']['sp'])) // 256 * 256
    agg[(names[pc], hi - lo, used)] += 1
for (fn, size, used), count in agg.most_common(30):
    print("STK", count, fn, "size", size, "used~", used)
end
detach
quit
