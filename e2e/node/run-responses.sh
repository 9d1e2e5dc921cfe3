#!/usr/bin/env bash
# Runs the OpenAI Node SDK tests (responses*.test.mjs) through a freshly built
# tollgate against the fake upstream, which speaks only chat completions, so
# every call goes through the Responses bridge. Then tries `codex exec` the
# same way (see docs/responses.md for what it shows). All on 127.0.0.1.
#
#   e2e/node/run-responses.sh            from the repository root or anywhere
#
# Skips (exit 0, with a message) when node or npm is missing. Installs the
# pinned packages with `npm ci` when node_modules is absent. Every process it
# starts is stopped by its PID on exit; nothing leaves loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "SKIP: node and npm are needed for the OpenAI SDK / Codex tests" >&2
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

if [ ! -d "$here/node_modules" ]; then
	(cd "$here" && npm ci --no-audit --no-fund)
fi
(cd "$root" && CGO_ENABLED=0 go build -o "$work/tollgate" ./cmd/tollgate)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fport=$(free_port)
gport=$(free_port)
"$work/tollgate" fake-upstream --listen "127.0.0.1:$fport" --chunks 4 >"$work/fake.log" 2>&1 &
pids+=($!)

cat >"$work/tollgate.yaml" <<YAML
upstreams:
  - name: chat
    base_url: http://127.0.0.1:$fport/v1
    api_key: sk-upstream-chat
YAML
export TOLLGATE_DB="$work/t.db" TOLLGATE_AUTH=enabled TOLLGATE_LOG_LEVEL=debug TOLLGATE_LISTEN="127.0.0.1:$gport"
key="$("$work/tollgate" keys create --name e2e-responses | awk '/^ *tg[-_]/{print $1}')"
TOLLGATE_CONFIG="$work/tollgate.yaml" "$work/tollgate" serve >"$work/gw.log" 2>&1 &
gpid=$!
pids+=("$gpid")
for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$gport/healthz" >/dev/null 2>&1 && break
	kill -0 "$gpid" 2>/dev/null || { cat "$work/gw.log" >&2; exit 1; }
	sleep 0.1
done

status=0
(cd "$here" && TOLLGATE_URL="http://127.0.0.1:$gport" TOLLGATE_KEY="$key" TOLLGATE_MODEL=gpt-4o \
	node --test responses*.test.mjs) || status=$?

# Codex CLI, offline: its own home, no update check, no analytics, the
# gateway as its only provider (wire_api responses).
codex_bin="$here/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
if [ -x "$codex_bin" ] && [ "${TOLLGATE_E2E_CODEX:-1}" = 1 ]; then
	mkdir -p "$work/codex-home" "$work/codex-cwd"
	set +e
	CODEX_HOME="$work/codex-home" TOLLGATE_KEY="$key" NO_PROXY='*' timeout "${TOLLGATE_E2E_CODEX_SECONDS:-20}" "$codex_bin" exec \
		--skip-git-repo-check --cd "$work/codex-cwd" --sandbox read-only \
		-c model_provider=tollgate -c model=gpt-4o \
		-c 'model_providers.tollgate.name="tollgate"' \
		-c "model_providers.tollgate.base_url=\"http://127.0.0.1:$gport/v1\"" \
		-c 'model_providers.tollgate.wire_api="responses"' \
		-c 'model_providers.tollgate.env_key="TOLLGATE_KEY"' \
		-c 'model_providers.tollgate.stream_max_retries=0' \
		-c 'model_providers.tollgate.request_max_retries=0' \
		-c check_for_update_on_startup=false -c analytics.enabled=false \
		-c 'otel.exporter="none"' \
		"say hello" >"$work/codex.out" 2>"$work/codex.err"
	crc=$?
	set -e
	echo "codex exec exit $crc; requests it made through tollgate:"
	grep -c '"/v1/responses"' "$work/gw.log" || true
	tail -n 20 "$work/codex.err"
	tail -n 5 "$work/codex.out"
fi
exit $status
