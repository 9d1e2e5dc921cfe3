#!/usr/bin/env bash
# Deploy checks (issue 13): installs what is missing (docker.io, nginx-light,
# docker-compose, systemd) with apt, starts dockerd when no daemon answers,
# runs the deploy package's tests (image build and run, nginx, compose config,
# systemd verify, .env.example) and stops what it started. ~1-2 minutes.
#
# Called from .ci/run. Set DEPLOY_CHECKS_NO_INSTALL=1 to use only what is
# installed (tests then skip with a message for what is absent).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
{ command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } || need+=(docker-compose)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ] && [ "${DEPLOY_CHECKS_NO_INSTALL:-}" != 1 ]; then
  echo "== apt-get install ${need[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || echo "apt-get install failed; the tests skip what is missing"
  else
    echo "not root: cannot install ${need[*]}; the tests skip what is missing"
  fi
fi

dockerd_pid=
stop_dockerd() {
  if [ -n "$dockerd_pid" ]; then
    echo "== stopping the dockerd this script started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
  fi
}
trap stop_dockerd EXIT

if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== starting dockerd (vfs storage, no bridge: containers use --network host)"
  log=$(mktemp -t dockerd.XXXXXX.log)
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs >"$log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up (log: $log); container tests will skip"; tail -5 "$log" || true; }
fi

echo "== go test ./deploy/ (image, nginx, compose, systemd, .env.example)"
go test -count=1 -timeout 8m -v ./deploy/
