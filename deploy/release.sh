#!/bin/sh
# Cross-compiles static, stripped release binaries with SHA-256 sums:
#
#   deploy/release.sh [OUTDIR]        (default: dist/)
#
# Targets: linux/amd64, linux/arm64, darwin/arm64, windows/amd64. The version
# is VERSION or `git describe`. Nothing is uploaded.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist}
cd "$root"

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w -X main.version=$version -X main.revision=$revision -X main.commitTime=$created"

mkdir -p "$out"
for target in linux/amd64 linux/arm64 darwin/arm64 windows/amd64; do
	os=${target%/*}
	arch=${target#*/}
	ext=
	[ "$os" = windows ] && ext=.exe
	name="tollgate_${version}_${os}_${arch}${ext}"
	echo "building $name"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out/$name" ./cmd/tollgate
done

cd "$out"
rm -f SHA256SUMS
sha256sum tollgate_"${version}"_* >SHA256SUMS
cat SHA256SUMS
