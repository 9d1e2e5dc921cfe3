# Which calls grow goroutine stacks past 4 KB, and from where (docs/perf.md,
# "The handler goroutine's stack"). Attach to a running gateway of your own
# while a workload runs; it prints one line per growth and, for the server's
# connection goroutines and the streams' own (serveHandedOff), the callers
# (walked along frame pointers, with the depth in bytes from the top of the
# stack):
#   timeout -s INT 30 gdb -q -batch -p PID -x bench/gdb/stackgrowth.gdb | grep -E '^(HIT|CHAIN)' | sort | uniq -c | sort -rn
# The breakpoint stops the process on every growth: expect it to run slowly.
# End gdb with SIGINT (timeout -s INT, kill -INT), which detaches it: killed
# with SIGTERM it leaves its breakpoint in the gateway, whose next stack
# growth then dies of SIGTRAP.
set pagination off
python
import gdb, struct

def name(pc):
    b = gdb.block_for_pc(pc)
    while b and not b.function:
        b = b.superblock
    return b.function.name if b else hex(pc)

class Growth(gdb.Breakpoint):
    def stop(self):
        g0 = gdb.parse_and_eval('$r14').cast(gdb.lookup_type('runtime.g').pointer()).dereference()
        gp = g0['m']['curg']
        lo, hi = int(gp['stack']['lo']), int(gp['stack']['hi'])
        if hi - lo < 4096:
            return False
        start = name(int(gp['startpc']))
        print("HIT", start, hi - lo, name(int(gp['sched']['pc'])), name(int(g0['m']['morebuf']['pc'])), hi - int(gp['sched']['sp']), flush=True)
        if 'Server).Serve' in start or 'serveHandedOff' in start:
            bp, chain, mem = int(gp['sched']['bp']), [], gdb.selected_inferior()
            while lo <= bp < hi and len(chain) < 14:
                nbp, ret = struct.unpack('<QQ', bytes(mem.read_memory(bp, 16)))
                chain.append("%s@%d" % (name(ret).split('/')[-1], hi - bp))
                bp = nbp
            print("CHAIN", " < ".join(chain), flush=True)
        return False

Growth("runtime.newstack")
end
continue
