#!/usr/bin/env bash
# Runs the Anthropic SDK and Claude Code tests (anthropic*.test.mjs) through a
# freshly built tollgate against the fake upstream, all on 127.0.0.1.
#
#   e2e/node/run-anthropic.sh            from the repository root or anywhere
#
# Skips (exit 0, with a message) when node or npm is missing. Installs the
# pinned packages with `npm ci` when node_modules is absent or older than the lock file. Every process it
# starts is stopped by its PID on exit; nothing leaves loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "SKIP: node and npm are needed for the Anthropic SDK / Claude Code tests" >&2
	exit 0
fi
work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# Install, or reinstall when the lock file changed since the last install.
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	(cd "$here" && npm ci --no-audit --no-fund)
fi
# TOLLGATE_BIN: a tollgate binary built already (the Go test that runs these
# scripts builds it once for both); else build one.
if [ -n "${TOLLGATE_BIN:-}" ]; then
	cp "$TOLLGATE_BIN" "$work/tollgate"
else
	(cd "$root" && CGO_ENABLED=0 go build -o "$work/tollgate" ./cmd/tollgate)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fport=$(free_port)
gport=$(free_port)
"$work/tollgate" fake-upstream --listen "127.0.0.1:$fport" --chunks 4 >"$work/fake.log" 2>&1 &
pids+=($!)

# Two upstreams on the one fake: chat completions for the translated path,
# the fake's Anthropic endpoints (api: anthropic) for the passthrough path.
cat >"$work/with-anthropic.yaml" <<YAML
upstreams:
  - name: chat
    base_url: http://127.0.0.1:$fport/v1
    api_key: sk-upstream-chat
    models: ["gpt-*", "claude-sonnet-4-6", "claude-haiku-*", "my-*"]
  - name: anthropic
    api: anthropic
    base_url: http://127.0.0.1:$fport/v1
    api_key: sk-upstream-anthropic
    models: ["claude-passthrough-*"]
YAML
sed '/- name: anthropic/,$d' "$work/with-anthropic.yaml" >"$work/chat-only.yaml"

export TOLLGATE_DB="$work/t.db" TOLLGATE_AUTH=enabled TOLLGATE_LOG_LEVEL=info TOLLGATE_LISTEN="127.0.0.1:$gport"
key="$("$work/tollgate" keys create --name e2e-anthropic | awk '/^ *tg-/{print $1}')"

start_gateway() {
	TOLLGATE_CONFIG="$1" "$work/tollgate" serve >"$work/gw.log" 2>&1 &
	gpid=$!
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$gport/healthz" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$gpid" 2>/dev/null; then return 1; fi
		sleep 0.1
	done
	return 1
}
passthrough=claude-passthrough-1
if start_gateway "$work/with-anthropic.yaml"; then
	pids+=("$gpid")
else
	echo "NOTE: this build does not accept 'api: anthropic' upstreams yet; passthrough tests are skipped" >&2
	sed -n 1,5p "$work/gw.log" >&2
	passthrough=""
	start_gateway "$work/chat-only.yaml" || { cat "$work/gw.log" >&2; exit 1; }
	pids+=("$gpid")
fi

claude_bin="$here/node_modules/@anthropic-ai/claude-code-linux-x64/claude"
[ -x "$claude_bin" ] || claude_bin=""
status=0
(cd "$here" && TOLLGATE_URL="http://127.0.0.1:$gport" TOLLGATE_KEY="$key" TOLLGATE_MODEL=gpt-4o \
	TOLLGATE_PASSTHROUGH_MODEL="$passthrough" CLAUDE_BIN="$claude_bin" \
	node --test --test-concurrency=1 anthropic*.test.mjs) || status=$?
if [ "$status" -ne 0 ]; then
	echo "--- gateway log (last 40 lines)" >&2
	tail -n 40 "$work/gw.log" >&2
fi
exit "$status"
