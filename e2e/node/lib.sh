# Sourced by run-*.sh: the setup both share. It sets here, root, work, pids,
# fport (a running fake upstream) and gport (free, for the gateway), puts
# a tollgate binary at $work/tollgate, and stops every process in pids on exit.
# The caller sets what (the tests' name, for the skip message) first.
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "SKIP: node and npm are needed for the $what tests" >&2
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
