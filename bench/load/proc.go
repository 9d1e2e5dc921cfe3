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

// ProcSample is one reading of a process's accounting.
type ProcSample struct {
	// CPU is user plus system time consumed so far, all threads.
	CPU time.Duration
	// RSS is the resident set size now (VmRSS).
	RSS int64
	// HWM is the peak resident set size over the process's lifetime (VmHWM).
	HWM int64
}

// ReadProc samples /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcSample, error) {
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
	return s, nil
}

// TicksToDuration converts clock ticks to a duration.
func TicksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicks)
}

// ParseStatCPU returns utime+stime, in clock ticks, from the contents of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and ')', so fields are counted after the last ')'.
func ParseStatCPU(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse stat: no ')' after the command name")
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, i.e. the 12th and 13th after the parenthesis.
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(string(fields[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(fields[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat stime: %w", err)
	}
	return utime + stime, nil
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
