package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/ui"
)

// newUI builds the dashboard over the admin API (without its bearer check:
// the dashboard's sessions stand in for it). Key holders can sign in when
// gateway keys are enabled.
func newUI(cfg config.Config, adminOpts admin.Options, keys *auth.Cache, st store.Store, logger *slog.Logger) (*ui.Handler, error) {
	opts := ui.Options{AdminToken: cfg.AdminToken, API: admin.NewAPI(adminOpts), Logger: logger}
	if keys != nil {
		opts.LookupKey, opts.GetKey = keys.Lookup, st.GetKey
	}
	h, err := ui.New(opts)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return h, nil
}

// demoLoginTTL is how long serve --demo's sign-in link stays valid.
const demoLoginTTL = 15 * time.Minute

// printDashboard prints the dashboard URL and a one-time admin sign-in link.
func printDashboard(w io.Writer, addr string, h *ui.Handler) {
	if h == nil {
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(w, "Dashboard: %s/ui/\nOne-time admin sign-in (valid %v, works once): %s%s\n\n",
		base, demoLoginTTL, base, h.OneTimeLogin(demoLoginTTL))
}
