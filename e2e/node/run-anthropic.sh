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
what="Anthropic SDK / Claude Code"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

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
