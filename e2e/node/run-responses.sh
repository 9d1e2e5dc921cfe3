#!/usr/bin/env bash
# Runs the OpenAI Node SDK tests (responses*.test.mjs) through a freshly built
# tollgate against the fake upstream, which speaks only chat completions, so
# every call goes through the Responses bridge. Then runs Codex CLI
# (`codex exec "say hello"`) the same way: it must exit 0, print the fake's
# answer, and leave ledger rows whose tokens equal what Codex reports. All on
# 127.0.0.1. TOLLGATE_E2E_CODEX=0 skips Codex.
#
#   e2e/node/run-responses.sh            from the repository root or anywhere
#
# Skips (exit 0, with a message) when node or npm is missing. Installs the
# pinned packages with `npm ci` when node_modules is absent or older than the lock file. Every process it
# starts is stopped by its PID on exit; nothing leaves loopback.
set -euo pipefail
what="OpenAI SDK / Codex"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

cat >"$work/tollgate.yaml" <<YAML
upstreams:
  - name: chat
    base_url: http://127.0.0.1:$fport/v1
    api_key: sk-upstream-chat
YAML
export TOLLGATE_DB="$work/t.db" TOLLGATE_AUTH=enabled TOLLGATE_LOG_LEVEL=debug TOLLGATE_LISTEN="127.0.0.1:$gport"
key="$("$work/tollgate" keys create --name e2e-responses | awk '/^ *tg[-_]/{print $1}')"
codex_key="$("$work/tollgate" keys create --name e2e-codex | awk '/^ *tg[-_]/{print $1}')"
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
# gateway as its only provider (wire_api responses). Codex sends its tools on
# every request, and the fake calls the first tool whenever tools are offered;
# the provider's http_headers add X-Fake-Reply: text (the gateway forwards it)
# so the fake answers in text and the turn ends with response.completed.
codex_bin="$here/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
if [ "${TOLLGATE_E2E_CODEX:-1}" != 1 ]; then
	echo "SKIP: codex exec (TOLLGATE_E2E_CODEX=${TOLLGATE_E2E_CODEX})"
elif [ ! -x "$codex_bin" ]; then
	echo "FAIL: the Codex binary is missing from node_modules: $codex_bin" >&2
	status=1
else
	mkdir -p "$work/codex-home" "$work/codex-cwd"
	crc=0
	CODEX_HOME="$work/codex-home" TOLLGATE_KEY="$codex_key" NO_PROXY='*' timeout "${TOLLGATE_E2E_CODEX_SECONDS:-60}" "$codex_bin" exec \
		--skip-git-repo-check --cd "$work/codex-cwd" --sandbox read-only \
		-c model_provider=tollgate -c model=gpt-4o \
		-c 'model_providers.tollgate.name="tollgate"' \
		-c "model_providers.tollgate.base_url=\"http://127.0.0.1:$gport/v1\"" \
		-c 'model_providers.tollgate.wire_api="responses"' \
		-c 'model_providers.tollgate.env_key="TOLLGATE_KEY"' \
		-c 'model_providers.tollgate.http_headers={ "X-Fake-Reply" = "text" }' \
		-c 'model_providers.tollgate.stream_max_retries=0' \
		-c 'model_providers.tollgate.request_max_retries=0' \
		-c check_for_update_on_startup=false -c analytics.enabled=false \
		-c 'otel.exporter="none"' \
		"say hello" </dev/null >"$work/codex.out" 2>"$work/codex.err" || crc=$?
	# The fake echoes the last user message: "echo: say hello".
	if [ "$crc" -eq 0 ] && grep -q '^echo: say hello' "$work/codex.out"; then
		echo "ok - codex exec \"say hello\" answered: $(head -n 1 "$work/codex.out")"
	else
		echo "FAIL: codex exec exited $crc; stdout:" >&2
		cat "$work/codex.out" >&2
		echo "--- codex stderr (last 30 lines)" >&2
		tail -n 30 "$work/codex.err" >&2
		status=1
	fi
	codex_ran=1
fi

# Stop the gateway so the ledger is flushed, then check Codex's rows (its own
# key): every request metered from the upstream's usage, and the tokens the
# ledger charged equal to the "tokens used" Codex reports.
kill "$gpid" 2>/dev/null || true
wait "$gpid" 2>/dev/null || true
if [ "${codex_ran:-0}" = 1 ]; then
	"$work/tollgate" logs --format json --limit 1000 >"$work/ledger.jsonl"
	python3 - "$work/ledger.jsonl" "$work/codex.err" <<'PY' || status=1
import json, re, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r.get("key_name") == "e2e-codex"]
bad = [r for r in rows if not (r["endpoint"] == "/v1/responses" and r["status"] == 200 and r["outcome"] == "ok"
        and r["stream"] and not r["estimated"] and r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 and r["cost_nano_usd"] > 0)]
m = re.search(r"tokens used\s*\n\s*([\d,]+)", open(sys.argv[2]).read())
used = int(m.group(1).replace(",", "")) if m else None
total = sum(r["total_tokens"] for r in rows)
print(f"ledger: {len(rows)} row(s) for Codex's requests, {total} tokens; Codex reports {used} tokens used")
if not rows or bad or used != total:
    print("FAIL: ledger rows for Codex:", *map(json.dumps, rows), sep="\n", file=sys.stderr)
    sys.exit(1)
PY
fi
if [ "$status" -ne 0 ]; then
	echo "--- gateway log (last 40 lines)" >&2
	tail -n 40 "$work/gw.log" >&2
fi
exit $status
