package load

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	sample, err := os.ReadFile("testdata/stat")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr string
	}{
		// The sample's command name holds ") " to catch naive splitting.
		{"testdata sample", string(sample), 1234 + 567, ""},
		{"plain", "1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 10 20 0 0 20 0 1 0 5 100 200", 30, ""},
		{"waited-for children", "1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 10 20 300 4000 20 0 1 0 5 100 200", 4330, ""},
		{"no paren", "1 init S 0 1", 0, "no ')'"},
		{"truncated", "1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 10", 0, "fields"},
		{"bad utime", "1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 ten 20 0 0", 0, "utime"},
		{"bad stime", "1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 10 -2 0 0", 0, "stime"},
		{"bad cstime", "1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 10 2 0 x", 0, "cstime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	sample, err := os.ReadFile("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        string
		rss, hwm  int64
		wantError bool
	}{
		{"testdata sample", string(sample), 43210 << 10, 54321 << 10, false},
		{"minimal", "VmHWM:\t 2 kB\nVmRSS:\t 1 kB\n", 1 << 10, 2 << 10, false},
		{"missing hwm", "VmRSS:\t 1 kB\n", 0, 0, true},
		{"bad unit", "VmHWM:\t 2 MB\nVmRSS:\t 1 kB\n", 0, 0, true},
		{"bad number", "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hwm, err := ParseStatusMem(strings.NewReader(tt.in))
			if tt.wantError {
				if err == nil {
					t.Fatalf("got %d, %d, want an error", rss, hwm)
				}
				return
			}
			if err != nil || rss != tt.rss || hwm != tt.hwm {
				t.Fatalf("got %d, %d, %v; want %d, %d", rss, hwm, err, tt.rss, tt.hwm)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	// Burn a little CPU so the tick counter has moved.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU <= 0 || s.RSS <= 0 || s.HWM < s.RSS {
		t.Fatalf("implausible sample %+v", s)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Fatal("ReadProc of a PID that cannot exist succeeded")
	}
}

func TestTicksToDuration(t *testing.T) {
	if got := TicksToDuration(150); got != 1500*time.Millisecond {
		t.Fatalf("150 ticks = %v, want 1.5s", got)
	}
}

func TestParsePss(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"rollup", "00400000-7ffd [rollup]\nRss:   40252 kB\nPss:   29033 kB\nPss_Dirty:  29033 kB\n", 29033 << 10, true},
		{"no pss", "Rss:   40252 kB\nPss_Anon:  1 kB\n", 0, false},
		{"bad unit", "Pss:   29033 MB\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParsePss([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
