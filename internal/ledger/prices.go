package ledger

import (
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Amounts are integers in nano-units of the deployment's one currency
// (1e-9 USD, or 1e-9 CNY, ...), so cost is exact integer math. A price is
// kept per million tokens (nano-units per 1M tokens: $3/1M = 3_000_000_000)
// so that list prices with many decimals ($0.01875/1M, LiteLLM's 1.875e-08
// per token) stay exact; a record's cost is rounded once, to the nearest
// nano-unit.

// Rate is what one million tokens of each kind cost, in nano-units.
type Rate struct {
	Input      int64 // prompt tokens neither read from nor written to a prompt cache
	Output     int64 // completion tokens, reasoning included
	CacheRead  int64 // prompt tokens read from the provider's prompt cache
	CacheWrite int64 // prompt tokens written to the provider's prompt cache
}

// Price sources, shown by `tollgate prices`.
const (
	SourceBuiltin  = "builtin"
	SourceFile     = "file"
	SourceURL      = "url"
	SourceOverride = "override"
	// SourceUpstreamPrefix + upstream name: from that upstream's /v1/models.
	SourceUpstreamPrefix = "upstream:"
)

// Entry is one price: a model's rate, globally (Upstream "") or at one
// upstream, and where it came from.
type Entry struct {
	Model    string `json:"model"`
	Upstream string `json:"upstream,omitempty"`
	Rate
	Source string `json:"source"`
}

// Tokens are the counts a price applies to. PromptTokens follow the OpenAI
// convention: Prompt is ALL input tokens, cache reads (Cached) and cache
// writes (CacheWrite) included; Reasoning is part of Completion.
type Tokens struct {
	Prompt     int64
	Cached     int64
	CacheWrite int64
	Completion int64
	Reasoning  int64 // informational: billed as output
}

// Cost prices t at r, in nano-units, rounded half up. The sum is computed in
// 128 bits so no token count can overflow it; counts are clamped so that
// cache reads and writes never exceed the prompt (a provider bug must not
// make the uncached part negative).
func (r Rate) Cost(t Tokens) int64 {
	prompt := max(t.Prompt, 0)
	cached := min(max(t.Cached, 0), prompt)
	written := min(max(t.CacheWrite, 0), prompt-cached)
	var hi, lo uint64
	add := func(n, rate int64) {
		h, l := bits.Mul64(uint64(n), uint64(max(rate, 0)))
		var c uint64
		lo, c = bits.Add64(lo, l, 0)
		hi += h + c
	}
	add(prompt-cached-written, r.Input)
	add(cached, r.CacheRead)
	add(written, r.CacheWrite)
	add(max(t.Completion, 0), r.Output)
	lo, c := bits.Add64(lo, perMillion/2, 0)
	hi += c
	if hi >= perMillion { // the quotient would not fit in 64 bits
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo, perMillion)
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(q)
}

const perMillion = 1_000_000

// Layers, from the least to the most specific. Within the global and the
// per-upstream halves, a later layer replaces an earlier one's entry.
const (
	layerBuiltin  = "builtin"
	layerFrom     = "from" // prices_from: a file or URL
	layerOverride = "override"
)

// table is an immutable snapshot of every price, indexed for lookup.
type table struct {
	global   map[string]Entry            // lower-cased model → entry
	upstream map[string]map[string]Entry // upstream → lower-cased model → entry
}

// Pricer answers "what does this model cost at this upstream". It is safe
// for concurrent use; lookups take no lock (the table is an immutable
// snapshot swapped atomically when a source changes).
type Pricer struct {
	cur atomic.Pointer[table]

	mu       sync.Mutex
	global   map[string][]Entry // layer → entries (Upstream "")
	upstream map[string][]Entry // "override:NAME" or "list:NAME" → entries at NAME
}

// NewPricer returns a Pricer holding builtin (nil for none: see Builtin).
func NewPricer(builtin []Entry) *Pricer {
	p := &Pricer{global: map[string][]Entry{}, upstream: map[string][]Entry{}}
	p.global[layerBuiltin] = builtin
	p.rebuild()
	return p
}

// SetFrom replaces the prices loaded from prices_from (a file or URL).
func (p *Pricer) SetFrom(entries []Entry) { p.set(layerFrom, entries) }

// SetOverrides replaces the prices configured in the config file: entries
// with an Upstream apply at that upstream only.
func (p *Pricer) SetOverrides(entries []Entry) { p.set(layerOverride, entries) }

// SetUpstreamList replaces the prices an upstream's model list carried (see
// PricesFromModelList).
func (p *Pricer) SetUpstreamList(upstream string, entries []Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream["list:"+upstream] = entries
	p.rebuildLocked()
}

func (p *Pricer) set(layer string, entries []Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var global []Entry
	for k := range p.upstream {
		if strings.HasPrefix(k, layer+":") {
			delete(p.upstream, k)
		}
	}
	for _, e := range entries {
		if e.Upstream == "" {
			global = append(global, e)
			continue
		}
		p.upstream[layer+":"+e.Upstream] = append(p.upstream[layer+":"+e.Upstream], e)
	}
	p.global[layer] = global
	p.rebuildLocked()
}

func (p *Pricer) rebuild() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuildLocked()
}

// rebuildLocked merges the layers into a new table: builtin, then the
// file/URL, then config overrides for global prices; per upstream, the
// model list, then config overrides.
func (p *Pricer) rebuildLocked() {
	t := &table{global: map[string]Entry{}, upstream: map[string]map[string]Entry{}}
	for _, layer := range []string{layerBuiltin, layerFrom, layerOverride} {
		for _, e := range p.global[layer] {
			t.global[strings.ToLower(e.Model)] = e
		}
	}
	// "list:" sorts before "override:", so overrides win.
	for _, k := range slices.Sorted(maps.Keys(p.upstream)) {
		for _, e := range p.upstream[k] {
			m := t.upstream[e.Upstream]
			if m == nil {
				m = map[string]Entry{}
				t.upstream[e.Upstream] = m
			}
			m[strings.ToLower(e.Model)] = e
		}
	}
	p.cur.Store(t)
}

// Lookup finds the price of model at upstream: the upstream's own prices
// first, then the global ones. Each is tried with the exact name
// (case-insensitive), then without a vendor prefix ("openai/gpt-4o" →
// "gpt-4o"), then without a date snapshot suffix ("gpt-4o-2024-08-06").
func (p *Pricer) Lookup(upstream, model string) (Entry, bool) {
	t := p.cur.Load()
	if upstream != "" {
		if m := t.upstream[upstream]; m != nil {
			if e, ok := find(m, model); ok {
				return e, true
			}
		}
	}
	return find(t.global, model)
}

func find(m map[string]Entry, model string) (Entry, bool) {
	name := strings.ToLower(strings.TrimSpace(model))
	if e, ok := m[name]; ok {
		return e, true
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
		if e, ok := m[name]; ok {
			return e, true
		}
	}
	if base, ok := trimDateSuffix(name); ok {
		if e, ok := m[base]; ok {
			return e, true
		}
	}
	return Entry{}, false
}

// Has reports whether model has a price at upstream ("" = any upstream:
// the global prices only).
func (p *Pricer) Has(upstream, model string) bool {
	_, ok := p.Lookup(upstream, model)
	return ok
}

// HasAnywhere reports whether model has a price globally or at any upstream:
// what the gate asks before the upstream is chosen.
func (p *Pricer) HasAnywhere(model string) bool {
	t := p.cur.Load()
	if _, ok := find(t.global, model); ok {
		return true
	}
	for _, m := range t.upstream {
		if _, ok := find(m, model); ok {
			return true
		}
	}
	return false
}

// Cost prices t for model as served by upstream, in nano-units. priced is
// false when the model has no price; nano is then 0, meaning unknown, not
// free.
func (p *Pricer) Cost(upstream, model string, t Tokens) (nano int64, priced bool) {
	e, ok := p.Lookup(upstream, model)
	if !ok {
		return 0, false
	}
	return e.Cost(t), true
}

// MaxCost is the highest price of t for model over the global price and
// every upstream's own: what a budget reservation takes before the upstream
// is known.
func (p *Pricer) MaxCost(model string, t Tokens) (nano int64, priced bool) {
	tb := p.cur.Load()
	if e, ok := find(tb.global, model); ok {
		nano, priced = e.Cost(t), true
	}
	for _, m := range tb.upstream {
		if e, ok := find(m, model); ok {
			nano, priced = max(nano, e.Cost(t)), true
		}
	}
	return nano, priced
}

// Entries lists every price in effect, sorted by model then upstream; a
// global entry hidden by nothing and upstream entries are all listed.
func (p *Pricer) Entries() []Entry {
	t := p.cur.Load()
	out := slices.Collect(maps.Values(t.global))
	for _, m := range t.upstream {
		out = slices.AppendSeq(out, maps.Values(m))
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return strings.Compare(strings.ToLower(a.Model)+"\x00"+a.Upstream, strings.ToLower(b.Model)+"\x00"+b.Upstream)
	})
	return out
}

// trimDateSuffix strips the snapshot suffix of dated model names
// ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022").
func trimDateSuffix(m string) (string, bool) {
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if n := len(m); n > 11 && m[n-11] == '-' && m[n-6] == '-' && m[n-3] == '-' &&
		digits(m[n-10:n-6]) && digits(m[n-5:n-3]) && digits(m[n-2:]) {
		return m[:n-11], true
	}
	if n := len(m); n > 9 && m[n-9] == '-' && digits(m[n-8:]) {
		return m[:n-9], true
	}
	return m, false
}

// FormatAmount renders nano-units as a decimal amount without trailing
// zeros ("10", "0.000001", "-2.5").
func FormatAmount(nano int64) string {
	neg := nano < 0
	u := uint64(nano)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u/1e9, 10)
	if frac := u % 1e9; frac != 0 {
		f := strconv.FormatUint(frac+1e9, 10)[1:] // zero-padded to 9 digits
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		return "-" + s
	}
	return s
}
