package main

// Prices: building the Pricer from the configuration (shared by serve and
// the prices command) and `tollgate prices`, which lists every price with
// its source and the models the ledger saw without one.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/ledger/pricefeed"
	"github.com/tollgate/tollgate/internal/store"
)

// newPricer builds the price table of cfg: the built-in prices (when the
// currency is theirs), prices_from loaded once, and the config overrides.
// It returns the loader to run for periodic refreshes (nil without
// prices_from). A prices_from file that cannot be loaded stops startup (a
// typo must not silently price nothing); a URL that cannot be reached only
// warns, since the network may come back, and the next refresh retries.
func newPricer(ctx context.Context, cfg config.Config, logger *slog.Logger) (*ledger.Pricer, *pricefeed.Loader, error) {
	var builtin []ledger.Entry
	if strings.EqualFold(cfg.Currency, ledger.BuiltinCurrency) {
		builtin = ledger.Builtin()
	} else {
		logger.Info("the built-in prices are in USD and are not used: give prices in "+cfg.Currency+
			" with prices_from (TOLLGATE_PRICES) or prices", "currency", cfg.Currency)
	}
	p := ledger.NewPricer(builtin)
	if err := applyPriceOverrides(p, cfg); err != nil {
		return nil, nil, err
	}
	if cfg.PricesFrom == "" {
		return p, nil, nil
	}
	l := &pricefeed.Loader{Pricer: p, From: cfg.PricesFrom, Currency: cfg.Currency, Logger: logger}
	n, err := l.Load(ctx)
	switch {
	case err == nil:
		logger.Info("prices loaded", "prices", n)
	case strings.HasPrefix(cfg.PricesFrom, "http://") || strings.HasPrefix(cfg.PricesFrom, "https://"):
		logger.Warn("prices could not be loaded; using the built-in and configured prices until a refresh works", "error", err)
	default:
		return nil, nil, usageErr("config: prices_from: %v", err)
	}
	return p, l, nil
}

// applyPriceOverrides sets the config file's prices and upstream_prices.
func applyPriceOverrides(p *ledger.Pricer, cfg config.Config) error {
	f := ledger.PricesFile{Prices: cfg.Prices, UpstreamPrices: cfg.UpstreamPrices}
	entries, err := f.Entries(ledger.SourceOverride)
	if err != nil {
		return usageErr("config: prices: %v", err)
	}
	p.SetOverrides(entries)
	return nil
}

const pricesUsage = `usage: tollgate prices [--model SUBSTRING] [--since 30d] [--format table|json]
lists every price in effect (per 1M tokens, in the deployment currency) with
its source, then the models the ledger recorded without a price.
common flags: --db URL, --config FILE`

// pricesCmd prints the price table and the unpriced models seen in the ledger.
func pricesCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := newDBFlags("prices", stderr)
	model := f.fs.String("model", "", "only models containing this text")
	since := f.fs.String("since", "30d", "look for unpriced models in the ledger since then")
	format := f.fs.String("format", "table", "table or json")
	pos, err := f.parse(args)
	if err != nil {
		return flagDone(err)
	}
	if len(pos) > 0 {
		return usageErr("prices: unexpected argument %q\n%s", pos[0], pricesUsage)
	}
	if *format != "table" && *format != "json" {
		return usageErr("prices: --format must be table or json")
	}
	cfg, err := f.moneyConfig(e)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, _, err := newPricer(ctx, cfg, logger)
	if err != nil {
		return err
	}
	var entries []ledger.Entry
	for _, en := range p.Entries() {
		if strings.Contains(strings.ToLower(en.Model), strings.ToLower(*model)) {
			entries = append(entries, en)
		}
	}
	from, to, err := admin.TimeRange(*since, "", time.Now())
	if err != nil {
		return usageErr("prices: --%v", err)
	}
	unpriced, err := unpricedModels(ctx, f, e, stderr, from, to)
	if err != nil {
		return err
	}
	if *format == "json" {
		if entries == nil {
			entries = []ledger.Entry{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Currency string          `json:"currency"`
			Unit     string          `json:"unit"`
			Prices   []ledger.Entry  `json:"prices"`
			Unpriced []unpricedModel `json:"unpriced_seen"`
		}{cfg.Currency, "nano-units per 1M tokens", entries, unpriced})
	}
	return writePrices(stdout, cfg.Currency, entries, unpriced, p)
}

// unpricedModel is a model the ledger recorded requests of without a price.
type unpricedModel struct {
	Model    string `json:"model"`
	Requests int64  `json:"requests"`
}

// unpricedModels reads, from the usage aggregates, the models with
// requests that used tokens but had no price. A missing database is no
// error here: the price list is still worth showing.
func unpricedModels(ctx context.Context, f *dbFlags, e env, stderr io.Writer, from, to time.Time) ([]unpricedModel, error) {
	var out []unpricedModel
	err := withStore(ctx, f, e, stderr, true, func(st store.Store) error {
		rep, err := st.Usage(ctx, store.UsageQuery{Since: from, Until: to, GroupBy: "model"})
		if err != nil {
			return err
		}
		for _, g := range rep.Groups {
			if g.Unpriced > 0 {
				out = append(out, unpricedModel{g.Group, g.Unpriced})
			}
		}
		return nil
	})
	if err != nil && strings.HasPrefix(err.Error(), "no database at ") {
		return nil, nil
	}
	slices.SortFunc(out, func(a, b unpricedModel) int { return strings.Compare(a.Model, b.Model) })
	return out, err
}

func writePrices(w io.Writer, currency string, entries []ledger.Entry, unpriced []unpricedModel, p *ledger.Pricer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MODEL\tUPSTREAM\tINPUT\tOUTPUT\tCACHE READ\tCACHE WRITE\tSOURCE\n")
	for _, en := range entries {
		up := en.Upstream
		if up == "" {
			up = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", en.Model, up, ledger.FormatAmount(en.Input),
			ledger.FormatAmount(en.Output), ledger.FormatAmount(en.CacheRead), ledger.FormatAmount(en.CacheWrite), en.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d prices, in %s per 1M tokens.\n", len(entries), currency)
	if len(unpriced) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nModels recorded without a price (their cost is unknown; keys with a budget are refused them unless limits.unpriced is allow):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tREQUESTS\tNOW")
	for _, u := range unpriced {
		now := "still unpriced"
		if p.HasAnywhere(u.Model) {
			now = "priced now"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", u.Model, u.Requests, now)
	}
	return tw.Flush()
}

// moneyConfig loads the configuration the way dbURL does (no Validate: these
// commands need no upstream key), but checks the money settings.
func (f *dbFlags) moneyConfig(e env) (config.Config, error) {
	dotenv := e.dotenv
	if dotenv == "" {
		dotenv = ".env"
	}
	cfg, err := config.Load(config.Sources{ConfigFile: *f.config, DotEnv: dotenv, Lookup: e.lookup})
	if err != nil {
		return cfg, usageErr("config: %v", err)
	}
	cfg.Currency = strings.ToUpper(cfg.Currency)
	if _, err := cfg.Location(); err != nil {
		return cfg, usageErr("config: %v", err)
	}
	return cfg, nil
}
