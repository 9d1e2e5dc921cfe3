package repeat

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		l := New(10*time.Second, nil)
		ctx := context.Background()
		for range 1000 { // a burst: one line
			l.Log(ctx, log, slog.LevelError, "redis", "redis down", slog.String("err", "refused"))
		}
		l.Log(ctx, log, slog.LevelError, "db", "db down") // another key is independent
		time.Sleep(5 * time.Second)
		l.Log(ctx, log, slog.LevelError, "redis", "redis down") // within the interval
		time.Sleep(5 * time.Second)
		l.Log(ctx, log, slog.LevelError, "redis", "redis down") // interval passed: with the count
		time.Sleep(time.Minute)
		l.Log(ctx, log, slog.LevelError, "redis", "redis down") // nothing suppressed since
		want := strings.Join([]string{
			`level=ERROR msg="redis down" err=refused`,
			`level=ERROR msg="db down"`,
			`level=ERROR msg="redis down" suppressed=1000`,
			`level=ERROR msg="redis down"`,
		}, "\n") + "\n"
		if got := buf.String(); got != want {
			t.Errorf("log =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestLimiterBoundedKeys(t *testing.T) {
	l := New(time.Hour, nil)
	for i := range 10 * maxKeys {
		l.Allow(strings.Repeat("k", i%(maxKeys+7)+1))
	}
	if n := len(l.keys); n > maxKeys {
		t.Errorf("keys = %d; want at most %d", n, maxKeys)
	}
}

func TestPrinterLimitsLibraryLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := Printer{Limiter: New(10*time.Second, func() time.Time { return now }),
		Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Level: slog.LevelWarn, Key: "lib", Msg: "redis client"}
	for range 5 {
		p.Printf(context.Background(), "dial %s failed", "127.0.0.1:6379")
	}
	now = now.Add(11 * time.Second)
	p.Printf(context.Background(), "dial %s failed", "127.0.0.1:6379")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"detail":"dial 127.0.0.1:6379 failed"`) || !strings.Contains(lines[1], `"suppressed":4`) {
		t.Errorf("log:\n%s\nwant two lines, the second counting 4 suppressed", buf.String())
	}
}
