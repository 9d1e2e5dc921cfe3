package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// ClockTicks is the unit of utime and stime in /proc/PID/stat. It is
// sysconf(_SC_CLK_TCK), which the kernel fixes at 100 (USER_HZ) on every
// Linux architecture we run on; reading it would need cgo, so we assume it
// (`getconf CLK_TCK` prints 100 to confirm).
const ClockTicks = 100

// ProcSample is one reading of a process's accounting, its child
// processes included (tollgate's SQLite writer process is part of its cost).
type ProcSample struct {
	// CPU is user plus system time consumed so far, all threads.
	CPU time.Duration
	// RSS is the resident memory now: the proportional set size (Pss in
	// smaps_rollup), so pages shared by tollgate and its writer process (the
	// binary's text) count once, as the kernel splits them; VmRSS where Pss
	// cannot be read.
	RSS int64
	// HWM is the peak resident set size over the process's lifetime (VmHWM);
	// with children, the sum of each one's peak.
	HWM int64
}

// ReadProc samples /proc/PID/stat and /proc/PID/status of pid and of its
// descendants, and sums them; CPU includes children that have exited and
// were waited for.
func ReadProc(pid int) (ProcSample, error) {
	s, err := readOneProc(pid)
	if err != nil {
		return s, err
	}
	for _, c := range children(pid) {
		cs, err := ReadProc(c)
		if err != nil {
			continue // it exited between the listing and the read
		}
		s.CPU += cs.CPU
		s.RSS += cs.RSS
		s.HWM += cs.HWM
	}
	return s, nil
}

// children lists pid's child processes (/proc/PID/task/TID/children).
func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func readOneProc(pid int) (ProcSample, error) {
	var s ProcSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read stat: %w", err)
	}
	ticks, err := ParseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	s.CPU = TicksToDuration(ticks)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	defer f.Close()
	s.RSS, s.HWM, err = ParseStatusMem(f)
	if err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		if pss, ok := ParsePss(rollup); ok {
			s.RSS = pss
		}
	}
	return s, nil
}

// TicksToDuration converts clock ticks to a duration.
func TicksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicks)
}

// ParseStatCPU returns utime+stime+cutime+cstime (the process's CPU and
// that of its waited-for children), in clock ticks, from the contents of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and ')', so fields are counted after the last ')'.
func ParseStatCPU(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse stat: no ')' after the command name")
	}
	// After ") " come field 3 (state) onwards; utime, stime, cutime and
	// cstime are fields 14 to 17, i.e. the 12th to 15th after the parenthesis.
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 15 {
		return 0, fmt.Errorf("parse stat: %d fields after the command name, want at least 15", len(fields))
	}
	var sum uint64
	for j, name := range []string{"utime", "stime", "cutime", "cstime"} {
		v, err := strconv.ParseUint(string(fields[11+j]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat %s: %w", name, err)
		}
		sum += v
	}
	return sum, nil
}

// ParsePss returns the "Pss:" line of /proc/PID/smaps_rollup, in bytes.
func ParsePss(rollup []byte) (int64, bool) {
	for line := range bytes.Lines(rollup) {
		rest, ok := bytes.CutPrefix(line, []byte("Pss:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// ParseStatusMem returns VmRSS and VmHWM, in bytes, from the contents of
// /proc/PID/status (lines like "VmHWM:	  123456 kB").
func ParseStatusMem(r io.Reader) (rss, hwm int64, err error) {
	var gotRSS, gotHWM bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst, gotRSS = &rss, true
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst, gotHWM = &hwm, true
		default:
			continue
		}
		f := bytes.Fields(line[bytes.IndexByte(line, ':')+1:])
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("parse status: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse status %q: %w", line, err)
		}
		*dst = kb << 10
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("parse status: %w", err)
	}
	if !gotRSS || !gotHWM {
		return 0, 0, errors.New("parse status: VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}
