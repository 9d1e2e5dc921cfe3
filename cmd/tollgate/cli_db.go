package main

// The database commands: keys, usage, logs and migrate. They open the
// database directly (no running server needed) through the same packages the
// server uses, so their answers match the admin API's.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

// dbFlags are the flags every database command shares.
type dbFlags struct {
	fs     *flag.FlagSet
	db     *string
	config *string
}

func newDBFlags(name string, stderr io.Writer) *dbFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &dbFlags{
		fs:     fs,
		db:     fs.String("db", "", "database: file path, sqlite://PATH or postgres://... (default: config, TOLLGATE_DB, ./tollgate.db)"),
		config: fs.String("config", "", "YAML config file to read the database from (or TOLLGATE_CONFIG)"),
	}
}

// parse parses args, letting flags and positional arguments mix
// ("keys revoke ID --db x"), and returns the positional ones.
func (f *dbFlags) parse(args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 { // each round consumes at least one argument
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageErr("%s: %v", f.fs.Name(), err)
		}
		if f.fs.NArg() == 0 {
			break
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	return pos, nil
}

// flagDone turns a parse error into the command's result: -h is success.
func flagDone(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// dbURL is --db, else the configured database (config file, .env and
// environment, without Validate: these commands need no upstream key), else
// the default SQLite file.
func (f *dbFlags) dbURL(e env) (string, error) {
	if *f.db != "" {
		return *f.db, nil
	}
	dotenv := e.dotenv
	if dotenv == "" {
		dotenv = ".env"
	}
	cfg, err := config.Load(config.Sources{ConfigFile: *f.config, DotEnv: dotenv, Lookup: e.lookup})
	if err != nil {
		return "", usageErr("config: %v", err)
	}
	if cfg.Database.URL == "" {
		return storeopen.DefaultSQLitePath, nil
	}
	return cfg.Database.URL, nil
}

// open opens the store. With mustExist, a missing SQLite file is an error
// rather than a new empty database, since reading from one is surely a
// mistaken path.
func (f *dbFlags) open(ctx context.Context, e env, stderr io.Writer, mustExist bool) (store.Store, error) {
	url, err := f.dbURL(e)
	if err != nil {
		return nil, err
	}
	if backend, path := storeopen.Parse(url); mustExist && backend == storeopen.BackendSQLite {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s (pass --db, set TOLLGATE_DB, or run tollgate migrate)", path)
		}
	}
	// Only warnings: "database ready" would clutter command output.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return storeopen.Open(ctx, url, logger)
}

const keysUsage = `usage: tollgate keys create --name NAME [--models 'gpt-4o,claude-*'] [--rpm N] [--tpm N]
                            [--max-parallel N] [--budget 10USD/day] [--expires 30d]
         (budgets are in the deployment currency, TOLLGATE_CURRENCY: 10CNY/day, or just 10/day)
       tollgate keys list [--format table|json]
       tollgate keys revoke ID|NAME
       tollgate keys rotate ID|NAME
common flags: --db URL, --config FILE`

// keysCmd manages gateway keys: create, list, revoke, rotate.
func keysCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, keysUsage)
			return nil
		}
		return usageErr("keys: missing subcommand\n%s", keysUsage)
	}
	sub, args := args[0], args[1:]
	f := newDBFlags("keys "+sub, stderr)
	switch sub {
	case "create":
		return keysCreate(ctx, f, args, e, stdout, stderr)
	case "list", "ls":
		format := f.fs.String("format", "table", "table or json")
		pos, err := f.parse(args)
		if err != nil {
			return flagDone(err)
		}
		if len(pos) > 0 {
			return usageErr("keys list: unexpected argument %q", pos[0])
		}
		if *format != "table" && *format != "json" {
			return usageErr("keys list: --format must be table or json")
		}
		cfg, err := f.moneyConfig(e)
		if err != nil {
			return err
		}
		return withStore(ctx, f, e, stderr, true, func(st store.Store) error {
			return keysList(ctx, keyManager(cfg, st), *format, stdout)
		})
	case "revoke", "rotate":
		pos, err := f.parse(args)
		if err != nil {
			return flagDone(err)
		}
		if len(pos) != 1 {
			return usageErr("keys %s: want exactly one key id\n%s", sub, keysUsage)
		}
		cfg, err := f.moneyConfig(e)
		if err != nil {
			return err
		}
		return withStore(ctx, f, e, stderr, true, func(st store.Store) error {
			id, err := resolveKeyRef(ctx, st, pos[0]) // an id or a key name
			if err != nil {
				return err
			}
			m := keyManager(cfg, st)
			if sub == "revoke" {
				if err := m.Revoke(ctx, id); err != nil {
					return keyErr(id, err)
				}
				fmt.Fprintf(stdout, "Revoked key %s. Running servers stop accepting it within their key refresh interval.\n", id)
				return nil
			}
			plaintext, k, err := m.Rotate(ctx, id)
			if err != nil {
				return keyErr(id, err)
			}
			printNewKey(stdout, "Rotated", plaintext, k)
			return nil
		})
	}
	return usageErr("keys: unknown subcommand %q\n%s", sub, keysUsage)
}

// keyManager is the key Manager over st with the configured currency and
// time zone (checked by moneyConfig), as the server builds it.
func keyManager(cfg config.Config, st store.Store) *auth.Manager {
	m := auth.NewManager(st, nil)
	m.Currency = cfg.Currency
	m.Location, _ = cfg.Location()
	return m
}

// keyErr words a Manager error for the terminal.
func keyErr(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no key with id %q (see tollgate keys list)", id)
	}
	return err
}

// withStore opens the store, runs fn and closes it.
func withStore(ctx context.Context, f *dbFlags, e env, stderr io.Writer, mustExist bool, fn func(store.Store) error) error {
	st, err := f.open(ctx, e, stderr, mustExist)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

func keysCreate(ctx context.Context, f *dbFlags, args []string, e env, stdout, stderr io.Writer) error {
	name := f.fs.String("name", "", "key name (required)")
	models := f.fs.String("models", "", "comma-separated models the key may call, '*' globs allowed (default: all)")
	rpm := f.fs.Int("rpm", 0, "requests per minute (0: server default)")
	tpm := f.fs.Int("tpm", 0, "tokens per minute (0: server default)")
	parallel := f.fs.Int("max-parallel", 0, "requests in flight (0: server default)")
	budget := f.fs.String("budget", "", "spend limit in the deployment currency (TOLLGATE_CURRENCY), e.g. 10USD/day, 50CNY/month, 100/total")
	expires := f.fs.String("expires", "", "lifetime, e.g. 30d or 12h (default: never)")
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	switch {
	case len(pos) > 0:
		return usageErr("keys create: unexpected argument %q", pos[0])
	case strings.TrimSpace(*name) == "":
		return usageErr("keys create: --name is required")
	case *rpm < 0 || *tpm < 0 || *parallel < 0:
		return usageErr("keys create: --rpm, --tpm and --max-parallel must not be negative")
	}
	cfg, err := f.moneyConfig(e)
	if err != nil {
		return err
	}
	// Validate here so a typo is a usage error (exit 2), not a failure.
	if _, _, err := auth.ParseBudget(*budget, cfg.Currency); err != nil {
		return usageErr("keys create: --budget: %v", err)
	}
	if *expires != "" {
		if d, err := auth.ParseDuration(*expires); err != nil || d <= 0 {
			return usageErr("keys create: --expires: want a positive duration such as 30d or 12h")
		}
	}
	opts := auth.CreateOptions{
		Name: *name, RPM: *rpm, TPM: *tpm, MaxParallel: *parallel, Budget: *budget, Expires: *expires,
	}
	if *models != "" {
		opts.Models = strings.Split(*models, ",")
	}
	return withStore(ctx, f, e, stderr, false, func(st store.Store) error {
		plaintext, k, err := keyManager(cfg, st).Create(ctx, opts)
		if err != nil {
			return err
		}
		printNewKey(stdout, "Created", plaintext, k)
		return nil
	})
}

// printNewKey shows a new secret, the one time it is ever shown.
func printNewKey(w io.Writer, verb, plaintext string, k store.Key) {
	fmt.Fprintf(w, "%s key %s (%s), prefix %s\n\n    %s\n\n", verb, k.ID, k.Name, k.Prefix, plaintext)
	fmt.Fprintln(w, "Copy it now: it is stored only as a hash and will not be shown again.")
}

func keysList(ctx context.Context, m *auth.Manager, format string, stdout io.Writer) error {
	keys, err := m.List(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
		if keys == nil {
			keys = []auth.KeyInfo{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(keys)
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "No keys. Create one with: tollgate keys create --name NAME")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSTATUS\tMODELS\tRPM\tTPM\tPARALLEL\tBUDGET\tSPEND\tLAST USED (UTC)")
	for _, k := range keys {
		models := "*"
		if len(k.Models) > 0 {
			models = strings.Join(k.Models, ",")
		}
		last := "never"
		if !k.LastUsed.IsZero() {
			last = k.LastUsed.UTC().Format("2006-01-02 15:04")
		}
		// Spend and budget in the same form: "0.12CNY" of "10CNY/day".
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.Status, models,
			limitText(k.RPM), limitText(k.TPM), limitText(k.MaxParallel),
			auth.FormatBudget(k.BudgetNano, k.BudgetPeriod, k.Currency), ledger.FormatAmount(k.SpendThisPeriod)+k.Currency, last)
	}
	return tw.Flush()
}

// limitText shows 0 as "default": the server's global limit applies.
func limitText(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

// usageCmd prints a usage report as an aligned table, CSV or JSON.
func usageCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := newDBFlags("usage", stderr)
	since := f.fs.String("since", "24h", "start: RFC 3339, a date, or a duration back from now (24h, 7d)")
	until := f.fs.String("until", "", "end (exclusive), same forms as --since (default: now)")
	by := f.fs.String("by", "model", "group by "+admin.GroupBys+", or none")
	keyID := f.fs.String("key", "", "only this key id")
	format := f.fs.String("format", "table", "table, csv or json")
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	if len(pos) > 0 {
		return usageErr("usage: unexpected argument %q", pos[0])
	}
	groupBy := *by
	if groupBy == "none" {
		groupBy = ""
	}
	if !admin.ValidGroupBy(groupBy) {
		return usageErr("usage: --by must be %s, or none", admin.GroupBys)
	}
	if !slices.Contains([]string{"table", "csv", "json"}, *format) {
		return usageErr("usage: --format must be table, csv or json")
	}
	from, to, err := admin.TimeRange(*since, *until, time.Now())
	if err != nil {
		return usageErr("usage: --%v", err)
	}
	cfg, err := f.moneyConfig(e)
	if err != nil {
		return err
	}
	loc, _ := cfg.Location() // checked by moneyConfig
	return withStore(ctx, f, e, stderr, true, func(st store.Store) error {
		rep, err := st.Usage(ctx, store.UsageQuery{Since: from, Until: to, GroupBy: groupBy, KeyID: *keyID, Location: loc})
		if err != nil {
			return err
		}
		rep.Currency = cfg.Currency
		if err := store.NameKeys(ctx, st, groupBy, &rep); err != nil {
			return err
		}
		switch *format {
		case "csv":
			return admin.WriteUsageCSV(stdout, rep)
		case "json":
			if rep.Groups == nil {
				rep.Groups = []store.UsageTotals{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		return writeUsageTable(stdout, groupBy, rep)
	})
}

// fmtMs shows a duration in milliseconds with the precision it deserves:
// a gateway answering in 1.4 ms must not read as "1" or "0".
func fmtMs(ms float64) string {
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}

func writeUsageTable(w io.Writer, groupBy string, rep store.UsageReport) error {
	label := strings.ToUpper(groupBy)
	if label == "" {
		label = "RANGE"
	}
	// Numbers align right; the first column is padded by hand so that the
	// group names still read left-aligned.
	width := len(admin.TotalLabel)
	for i, g := range rep.Groups {
		if g.KeyName != "" {
			rep.Groups[i].Group = g.KeyName + " (" + g.Group + ")"
		}
		width = max(width, len([]rune(rep.Groups[i].Group)), len("(none)"))
	}
	width = max(width, len(label))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	currency := cmp.Or(rep.Currency, "USD")
	fmt.Fprintf(tw, "%-*s\tREQUESTS\tERRORS\tREFUSED\tPROMPT\tCACHE READ\tCACHE WRITE\tCOMPLETION\tCOST %s\tP50 MS\tP95 MS\t\n", width, label, currency)
	row := func(name string, t store.UsageTotals) {
		name += strings.Repeat(" ", width-len([]rune(name)))
		cost := ledger.FormatAmount(t.CostNanoUSD)
		if t.Unpriced > 0 {
			cost += "+" // some requests had no price: the sum is a lower bound
		}
		p50, p95 := fmtMs(t.P50Ms), fmtMs(t.P95Ms)
		if !t.ExactPercentiles && t.Requests > 0 {
			p50, p95 = "~"+p50, "~"+p95 // estimated from the histogram
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", name, t.Requests, t.Errors, t.Refused,
			t.PromptTokens, t.CachedTokens, t.CacheWriteTokens, t.CompletionTokens, cost, p50, p95)
	}
	for _, g := range rep.Groups {
		name := g.Group
		if name == "" {
			name = "(none)"
		}
		row(name, g)
	}
	row(admin.TotalLabel, rep.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Total.Unpriced > 0 {
		fmt.Fprintf(w, "+ %d requests used models without a price; their cost is not included (see tollgate prices).\n", rep.Total.Unpriced)
	}
	if rep.Total.Refused > 0 {
		fmt.Fprintf(w, "%d requests were refused by the gateway (key, model, rate limit or budget) and used no tokens.\n", rep.Total.Refused)
	}
	if groupBy == "day" || groupBy == "hour" {
		fmt.Fprintf(w, "Times are in %s.\n", cmp.Or(rep.Timezone, "UTC"))
	}
	if rep.Total.Requests > 0 && !rep.Total.ExactPercentiles {
		fmt.Fprintln(w, "~ percentiles estimated from hourly histograms (too many rows, or raw rows past retention).")
	}
	return nil
}

// logsCmd prints recent ledger rows newest first; with --tail it then polls
// every second and prints new rows oldest first as they arrive, until ctx
// ends.
func logsCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := newDBFlags("logs", stderr)
	since := f.fs.String("since", "24h", "start: RFC 3339, a date, or a duration back from now (1h, 7d)")
	limit := f.fs.Int("limit", 50, "rows to show (at most 1000)")
	model := f.fs.String("model", "", "only this model")
	outcome := f.fs.String("outcome", "", "only this outcome (ok, client_error, upstream_error, timeout, ...)")
	keyID := f.fs.String("key", "", "only this key id")
	user := f.fs.String("user", "", "only this end user")
	format := f.fs.String("format", "table", "table or json (one object per line)")
	tail := f.fs.Bool("tail", false, "keep polling and print new rows as they arrive")
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	switch {
	case len(pos) > 0:
		return usageErr("logs: unexpected argument %q", pos[0])
	case *limit < 1 || *limit > admin.MaxLogLimit:
		return usageErr("logs: --limit must be between 1 and %d", admin.MaxLogLimit)
	case *format != "table" && *format != "json":
		return usageErr("logs: --format must be table or json")
	}
	from, _, err := admin.TimeRange(*since, "", time.Now())
	if err != nil {
		return usageErr("logs: --%v", err)
	}
	cfg, err := f.moneyConfig(e)
	if err != nil {
		return err
	}
	filter := store.LogFilter{Since: from, Model: *model, KeyID: *keyID, User: *user, Outcome: *outcome, Limit: *limit}
	out := &logPrinter{w: stdout, json: *format == "json", currency: cfg.Currency}
	return withStore(ctx, f, e, stderr, true, func(st store.Store) error {
		recs, _, err := st.ListLogs(ctx, filter)
		if err != nil {
			return err
		}
		if !*tail {
			out.header()
			for _, r := range recs {
				out.row(r)
			}
			return out.err
		}
		return tailLogs(ctx, st, filter, recs, out, time.Second)
	})
}

// tailLookback is how far before the newest row shown each poll looks
// again: a record carries its arrival time but is written when the request
// ends, so a long stream lands behind rows already printed.
const tailLookback = 10 * time.Minute

// tailLogs prints first (oldest first, so the newest row sits just above
// what follows), then polls every interval for rows not yet seen.
func tailLogs(ctx context.Context, st store.Store, f store.LogFilter, first []ledger.Record, out *logPrinter, interval time.Duration) error {
	seen := map[string]time.Time{}
	var newest time.Time
	show := func(recs []ledger.Record) { // recs newest first
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			seen[r.ID] = r.Time
			if r.Time.After(newest) {
				newest = r.Time
			}
			out.row(r)
		}
	}
	out.header()
	show(first)
	if newest.IsZero() {
		newest = f.Since
	}
	f.Limit = admin.MaxLogLimit
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for out.err == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		q := f
		q.Since = newest.Add(-tailLookback)
		if q.Since.Before(f.Since) {
			q.Since = f.Since
		}
		var fresh []ledger.Record
		for range 10 { // at most 10 pages a poll; the rest comes next poll
			recs, next, err := st.ListLogs(ctx, q)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, r := range recs {
				if _, ok := seen[r.ID]; !ok {
					fresh = append(fresh, r)
				}
			}
			if next == "" {
				break
			}
			q.Cursor = next
		}
		show(fresh)
		for id, t := range seen { // forget what the lookback no longer reaches
			if t.Before(newest.Add(-2 * tailLookback)) {
				delete(seen, id)
			}
		}
	}
	return out.err
}

// logPrinter writes log rows as fixed-width lines (so rows printed across
// polls line up) or JSON lines; it keeps the first write error.
type logPrinter struct {
	w        io.Writer
	json     bool
	currency string // of the COST column
	err      error
}

// Times are UTC, as the header says.
const logLineFormat = "%-19s  %-26s  %-16s  %-20s  %-12s  %-14s  %3s  %7s  %10s  %8s  %s\n"

func (p *logPrinter) header() {
	if p.json || p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, logLineFormat, "TIME (UTC)", "ID", "KEY", "MODEL", "UPSTREAM", "OUTCOME", "ST", "TOKENS", "COST "+cmp.Or(p.currency, auth.DefaultCurrency), "MS", "ERROR")
}

func (p *logPrinter) row(r ledger.Record) {
	if p.err != nil {
		return
	}
	if p.json {
		b, err := json.Marshal(admin.NewLogRow(r, p.currency, false))
		if err != nil {
			p.err = err
			return
		}
		_, p.err = fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	key := r.KeyName
	if key == "" {
		key = r.KeyID
	}
	tokens := strconv.FormatInt(r.TotalTokens, 10)
	if r.Estimated {
		tokens = "~" + tokens
	}
	cost := ledger.FormatAmount(r.CostNanoUSD)
	if !r.Priced {
		cost = "-"
	}
	line := fmt.Sprintf(logLineFormat, r.Time.UTC().Format("2006-01-02 15:04:05"), clip(r.ID, 26), clip(key, 16),
		clip(r.Model, 20), clip(r.Upstream, 12), r.Outcome, strconv.Itoa(r.Status), tokens, cost,
		strconv.FormatInt(r.Duration.Milliseconds(), 10), clip(strings.Join(strings.Fields(r.Error), " "), 80))
	_, p.err = io.WriteString(p.w, strings.TrimRight(line, " \n")+"\n")
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// migrateCmd applies pending database migrations.
func migrateCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := newDBFlags("migrate", stderr)
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	if len(pos) > 0 {
		return usageErr("migrate: unexpected argument %q", pos[0])
	}
	url, err := f.dbURL(e)
	if err != nil {
		return err
	}
	if err := storeopen.Migrate(ctx, url); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Database %s is up to date.\n", storeopen.Redact(url))
	return nil
}
