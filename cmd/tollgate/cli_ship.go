package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

// versionText is what "tollgate version" prints: the release version (set
// with -ldflags "-X main.version=..."), else the module version, and the VCS
// revision and commit time the go command stamped into the binary.
func versionText() string {
	v := version
	rev, when := revision, commitTime
	var modified, goVersion string
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version // go install github.com/tollgate/tollgate/cmd/tollgate@v1.2.3
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tollgate %s\n", v)
	if rev != "" {
		fmt.Fprintf(&b, "revision %s%s\n", rev, modified)
	}
	if when != "" {
		fmt.Fprintf(&b, "commit time %s\n", when)
	}
	fmt.Fprintf(&b, "built with %s for %s/%s", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// healthcheckCmd GETs the gateway's /healthz and succeeds on 200. It is the
// container image's HEALTHCHECK: the image has no shell or curl.
func healthcheckCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "health URL (default: http://HOST:PORT/healthz from TOLLGATE_LISTEN or PORT; HOST 127.0.0.1 unless the listen address names one)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageErr("healthcheck: %w", err)
	}
	if *url == "" {
		*url = "http://" + listenAddr(e) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return usageErr("healthcheck: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// listenAddr is where serve listens, from the environment only (a
// healthcheck runs beside the server, in its environment): loopback unless
// the listen address names a specific host.
func listenAddr(e env) string {
	host, port := "127.0.0.1", "3000"
	if v, ok := e.lookup("PORT"); ok && v != "" {
		port = v
	}
	if v, ok := e.lookup("TOLLGATE_LISTEN"); ok && v != "" {
		if h, p, err := net.SplitHostPort(v); err == nil && p != "" {
			port = p
			if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
				host = h
			}
		}
	}
	return net.JoinHostPort(host, port)
}

const backupUsage = `usage: tollgate backup [--db URL] [--config FILE] FILE
Writes an online, consistent copy of the SQLite database to FILE (VACUUM INTO):
the gateway keeps serving while it runs. FILE must not exist.`

// backupCmd copies the SQLite database with VACUUM INTO, which reads one
// consistent snapshot (a read transaction) while writers carry on, and writes
// a compact, self-contained file (no -wal to copy alongside).
func backupCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := newDBFlags("backup", stderr)
	f.fs.Usage = func() { fmt.Fprintln(stderr, backupUsage); f.fs.PrintDefaults() }
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	if len(pos) != 1 {
		return usageErr("backup: want the backup FILE\n%s", backupUsage)
	}
	dst := pos[0]
	dbURL, err := f.dbURL(e)
	if err != nil {
		return err
	}
	backend, src := storeopen.Parse(dbURL)
	if backend == storeopen.BackendPostgres {
		return usageErr("backup: the database is PostgreSQL; back it up with its own tools, e.g. pg_dump --format=custom --file=tollgate.dump \"$TOLLGATE_DB\"")
	}
	if err := backupSQLite(ctx, src, dst); err != nil {
		return err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "Backed up %s to %s (%d bytes).\n", src, dst, fi.Size())
	return nil
}

func backupSQLite(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backup: no database at %s (pass --db or set TOLLGATE_DB)", src)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("backup: %s exists; choose a new file", dst)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// busy_timeout: the server's writer may hold the lock for a moment.
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		_ = os.Remove(abs) // never leave a half-written file that looks like a backup
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// resolveKeyRef turns what the user typed after "keys revoke|rotate" into a
// key id: an id as is, else the name of exactly one key that is not revoked.
func resolveKeyRef(ctx context.Context, st store.Store, ref string) (string, error) {
	if _, err := st.GetKey(ctx, ref); err == nil {
		return ref, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, k := range keys {
		if k.Name == ref && k.RevokedAt.IsZero() {
			ids = append(ids, k.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no key with id %q, and no active key with that name (see tollgate keys list)", ref)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d active keys are named %q; name one by id: %s", len(ids), ref, strings.Join(ids, ", "))
}
