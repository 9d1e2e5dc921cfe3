package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// Traffic shapes for the insert benchmarks: 20 keys × users per key × 8
// models is the number of (hour, key, model, upstream, user) groups an hour,
// so the number of aggregate rows each batch upserts.
var benchShapes = []struct {
	name  string
	users int
}{
	{"groups=160", 1}, // realistic: a few hundred groups an hour
	{"groups=800", 5}, // pessimistic: storetest.SyntheticRecord's shape
}

// shapedRecord is storetest.SyntheticRecord with users end users per key.
func shapedRecord(i, users int, end time.Time) ledger.Record {
	r := storetest.SyntheticRecord(i, 1<<30, end, time.Hour)
	r.User = fmt.Sprintf("%s-u%d", r.KeyID, (uint64(i)*0x9E3779B97F4A7C15>>20)%uint64(users))
	return r
}

// benchStore opens a store in a fresh schema whose connections carry an
// application_name, so the benchmark can find its own backends.
// TOLLGATE_BENCH_PG_DROP_INDEXES=1 drops the six log-filter indexes of
// migration 00003 first, to measure the requests table without them.
func benchStore(b *testing.B) (*postgres.Store, *backendCPU) {
	b.Helper()
	u, err := url.Parse(testURL(b))
	if err != nil {
		b.Fatal(err)
	}
	app := "tgbench_" + strings.TrimPrefix(u.Query().Get("search_path"), "tg_test_")
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s, err := postgres.Open(b.Context(), u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if os.Getenv("TOLLGATE_BENCH_PG_DROP_INDEXES") == "1" {
		c, err := pgx.Connect(b.Context(), u.String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(context.Background())
		for _, ix := range []string{"model", "user", "outcome", "upstream", "status", "stream"} {
			if _, err := c.Exec(b.Context(), "DROP INDEX IF EXISTS requests_"+ix+"_time"); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s, &backendCPU{base: os.Getenv("TOLLGATE_TEST_POSTGRES_URL"), app: app}
}

// backendCPU reads the CPU time PostgreSQL spent for one benchmark: its
// own backends (found by application_name) and, for comparison on a quiet
// machine, every postgres process (background writer, WAL writer,
// checkpointer and other sessions included).
type backendCPU struct {
	base, app string
}

type cpuSample struct {
	own     map[int]time.Duration
	all     time.Duration
	client  time.Duration
	wal     int64 // pg_current_wal_lsn in bytes
	started time.Time
}

func (bc *backendCPU) sample(b *testing.B) cpuSample {
	b.Helper()
	c, err := pgx.Connect(context.Background(), bc.base)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, bc.app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	s := cpuSample{own: map[int]time.Duration{}, started: time.Now()}
	if err := c.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&s.wal); err != nil {
		b.Fatal(err)
	}
	for _, p := range pids {
		s.own[int(p)] = procCPU(int(p))
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "postgres" {
			s.all += procCPU(pid)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// procCPU is utime+stime of pid from /proc (0 if it is gone). Clock ticks
// are 1/100 s on Linux.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// report adds rows/s (wall), srv-µs/row (own backends), pg-µs/row (every
// postgres process) and cli-µs/row (this process) between before and now.
func (bc *backendCPU) report(b *testing.B, before cpuSample, rows int) {
	b.Helper()
	after := bc.sample(b)
	var own time.Duration
	for pid, t := range after.own {
		own += t - before.own[pid]
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(rows) }
	b.ReportMetric(float64(rows)/after.started.Sub(before.started).Seconds(), "rows/s")
	b.ReportMetric(per(own), "srv-µs/row")
	b.ReportMetric(per(after.all-before.all), "pg-µs/row")
	b.ReportMetric(per(after.client-before.client), "cli-µs/row")
	b.ReportMetric(float64(after.wal-before.wal)/float64(rows), "WAL-B/row")
	b.ReportMetric(0, "ns/op") // meaningless here: one op is one batch or 1000 rows
}

// BenchmarkInsert calls InsertRecords directly with full batches, the
// ledger writer's batches when it is behind.
func BenchmarkInsert(b *testing.B) {
	for _, sh := range benchShapes {
		for _, batch := range []int{1000, 5000, 10000} {
			b.Run(fmt.Sprintf("%s/batch=%d", sh.name, batch), func(b *testing.B) {
				s, bc := benchStore(b)
				end := time.Now()
				recs := make([]ledger.Record, batch)
				i := 0
				before := bc.sample(b)
				for b.Loop() {
					for j := range recs {
						recs[j] = shapedRecord(i, sh.users, end)
						i++
					}
					if err := s.InsertRecords(b.Context(), recs); err != nil {
						b.Fatal(err)
					}
				}
				bc.report(b, before, i)
			})
		}
	}
}

// BenchmarkWriterShapes pushes rows through a real ledger.Writer as fast as
// it takes them (the writer grows its batches up to MaxBatch while behind);
// the clock stops when Close has flushed them all. rows/s is the
// single-node ceiling of one gateway writing to this PostgreSQL.
func BenchmarkWriterShapes(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) {
			s, bc := benchStore(b)
			w := ledger.NewWriter(s, ledger.WriterOptions{BatchSize: 1000, QueueSize: 200_000,
				SpillPath: b.TempDir() + "/spill.jsonl"})
			end := time.Now()
			i := 0
			before := bc.sample(b)
			for b.Loop() {
				for range 1000 {
					w.Record(shapedRecord(i, sh.users, end))
					i++
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			if st := w.Stats(); st.Written != int64(i) || st.Lost != 0 || st.Spilled != 0 {
				b.Fatalf("writer stats %+v, want %d written, none spilled", st, i)
			}
			bc.report(b, before, i)
		})
	}
}
