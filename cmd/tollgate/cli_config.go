package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/realip"
	"github.com/tollgate/tollgate/internal/upstream"
)

const configUsage = `usage: tollgate config check [--config FILE] [--probe]
Validates the configuration as startup does (flags aside), prints the effective
configuration with every secret masked, and exits 0 when it is valid, 2 when not.
--probe also asks each upstream for GET /models.`

// configCmd dispatches "config check".
func configCmd(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprintln(stdout, configUsage)
			return nil
		}
		return usageErr("config: want a subcommand: check\n%s", configUsage)
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, configUsage); fs.PrintDefaults() }
	file := fs.String("config", "", "YAML config file (or TOLLGATE_CONFIG)")
	probe := fs.Bool("probe", false, "also GET each upstream's /models")
	timeout := fs.Duration("timeout", 5*time.Second, "per-upstream probe timeout")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr("config check: %w", err)
	}
	if fs.NArg() > 0 {
		return usageErr("config check: unexpected argument %q", fs.Arg(0))
	}
	dotenv := e.dotenv
	if dotenv == "" {
		dotenv = ".env"
	}
	cfg, err := config.Load(config.Sources{ConfigFile: *file, DotEnv: dotenv, Lookup: e.lookup})
	if err != nil {
		return usageErr("config: %v", err)
	}
	if err := checkConfig(cfg); err != nil {
		return usageErr("config: %v", err)
	}
	out, err := maskedYAML(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	fmt.Fprintf(stdout, "# effective configuration (secrets masked)\n%s", out)
	if *probe {
		if failed := probeUpstreams(ctx, cfg.UpstreamConfigs(), *timeout, stdout); failed > 0 {
			return usageErr("config: %d upstream(s) failed the probe", failed)
		}
	}
	fmt.Fprintln(stdout, "# configuration OK")
	return nil
}

// checkConfig runs the checks serve runs before it opens anything: Validate,
// then what newApp builds from the config (prices, trusted proxies, the
// upstream pool and aliases, the Redis URL).
func checkConfig(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkPrices(cfg); err != nil {
		return fmt.Errorf("prices: %w", err)
	}
	if _, err := realip.ParseTrusted(cfg.TrustedProxies); err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	_, err := upstream.NewPool(upstream.Options{ // Price is only needed to route
		Upstreams: cfg.UpstreamConfigs(),
		Aliases:   cfg.Models,
		Routing:   cfg.Routing,
		Breaker:   cfg.Breaker,
		Logger:    slog.New(slog.DiscardHandler),
	}, nil)
	if err != nil {
		return fmt.Errorf("upstreams: %w", err)
	}
	if cfg.RedisURL != "" {
		if _, err := redis.ParseURL(cfg.RedisURL); err != nil {
			return errors.New("TOLLGATE_REDIS_URL is not a redis:// URL") // the URL may hold a password
		}
	}
	return nil
}

// checkPrices validates the configured price overrides as newApp does.
func checkPrices(cfg config.Config) error {
	return applyPriceOverrides(ledger.NewPricer(nil), cfg)
}

// secretWords mark a YAML key as secret when they are one of its words
// (api_key, admin_token; not max_tokens or taotoken). Every value under a
// "headers" map is masked too (Authorization, api-key).
var secretWords = map[string]bool{"key": true, "apikey": true, "token": true, "secret": true,
	"password": true, "authorization": true, "headers": true}

func isSecretKey(k string) bool {
	for w := range strings.FieldsFuncSeq(strings.ToLower(k), func(r rune) bool { return r == '_' || r == '-' }) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// maskedYAML renders cfg as YAML with every secret replaced: values of keys
// named like a secret, header values, and passwords inside URLs.
func maskedYAML(cfg config.Config) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(cfg); err != nil {
		return nil, err
	}
	maskNode(&n, false)
	return yaml.Marshal(&n)
}

func maskNode(n *yaml.Node, secret bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			maskNode(n.Content[i+1], secret || isSecretKey(n.Content[i].Value))
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			maskNode(c, secret)
		}
	case yaml.ScalarNode:
		switch {
		case secret && n.Value != "":
			n.Value, n.Tag, n.Style = "*****", "!!str", yaml.DoubleQuotedStyle
		case strings.Contains(n.Value, "://"):
			if u, err := url.Parse(n.Value); err == nil && u.User != nil {
				n.Value = u.Redacted()
			}
		}
	}
}

// probeUpstreams GETs /models on each upstream with its credentials, prints
// one line per upstream and returns how many failed. Errors name the URL,
// never the key.
func probeUpstreams(ctx context.Context, ups []upstream.Config, timeout time.Duration, w io.Writer) (failed int) {
	client := &http.Client{Timeout: timeout}
	for _, u := range ups {
		start := time.Now()
		err := probeOne(ctx, client, u)
		if err != nil {
			failed++
			fmt.Fprintf(w, "# probe %s: FAILED: %v\n", u.Name, err)
			continue
		}
		fmt.Fprintf(w, "# probe %s: ok (%d ms)\n", u.Name, time.Since(start).Milliseconds())
	}
	return failed
}

func probeOne(ctx context.Context, client *http.Client, u upstream.Config) error {
	target := strings.TrimRight(u.BaseURL, "/") + "/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: bad URL", u.BaseURL)
	}
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	if u.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+u.APIKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is printed once, below
		}
		return fmt.Errorf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	return nil
}
