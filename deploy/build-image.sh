#!/bin/sh
# Builds the tollgate container image here, without pulling anything: the
# binary is compiled on the host and copied into a FROM scratch image.
#
#   deploy/build-image.sh [TAG]      (default tag: tollgate:local)
#
# Environment: VERSION (default: git describe), GOARCH (default: the host's).
# Needs go, docker and the host's CA bundle (/etc/ssl/certs/ca-certificates.crt).
set -eu

tag=${1:-tollgate:local}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$ca" ] || { echo "build-image: no CA bundle at $ca (apt-get install ca-certificates)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT INT TERM

mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
CGO_ENABLED=0 GOOS=linux go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.revision=$revision -X main.commitTime=$created" \
	-o "$ctx/rootfs/usr/local/bin/tollgate" ./cmd/tollgate
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\ntollgate:x:65532:65532:tollgate:/data:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\ntollgate:x:65532:\n' >"$ctx/rootfs/etc/group"
cp Dockerfile "$ctx/Dockerfile"

docker build --tag "$tag" \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
	"$ctx"
echo "built $tag ($version)"
