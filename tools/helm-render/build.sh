#!/usr/bin/env bash
# Builds helm-render (Helm v3.13.3's template engine, see src/tabby.dev/helm-render/main.go)
# offline with Debian's Go and Debian's Go library sources, and prints the binary's path.
# The binary is cached under node_modules/.cache/helm-render/<hash>, the hash of the sources,
# the Go version and the Debian packages' versions: a second call builds nothing.
#
# Needs: golang-go (1.19) and the library packages below, installed with apt-get when missing
# and when running as root (as .ci/run installs the test tools); otherwise it says what to
# install and exits 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Helm v3.13.3's go.mod pins sprig v3.2.3 and sigs.k8s.io/yaml v1.3.0: Debian 12's versions.
pkgs=(golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
  golang-github-burntsushi-toml-dev golang-github-pkg-errors-dev golang-github-gobwas-glob-dev
  golang-github-xeipuuv-gojsonschema-dev golang-github-mitchellh-copystructure-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "helm-render: missing Debian packages: ${missing[*]} (apt-get install them as root)" >&2
    exit 3
  fi
  echo "helm-render: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

go=/usr/lib/go-1.19/bin/go
[ -x "$go" ] || go="$(command -v go)"
key="$( (
  "$go" version
  dpkg-query -W "${pkgs[@]}"
  cd "$here" && find src build.sh -type f -print0 | sort -z | xargs -0 sha256sum
) | sha256sum | cut -c1-16)"
cache="$root/node_modules/.cache/helm-render"
bin="$cache/$key/helm-render"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

# GOPATH mode over Debian's sources (/usr/share/gocode/src, no network, no module proxy).
# Debian installs the v3 modules without their /v3 path element, so a small GOPATH maps the
# two import paths that carry one; our sources and Helm's are the first GOPATH entry.
work="$(mktemp -d "${TMPDIR:-/tmp}/helm-render.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for m in sprig semver; do
  mkdir -p "$work/gopath/src/github.com/Masterminds/$m"
  ln -s "/usr/share/gocode/src/github.com/Masterminds/$m" "$work/gopath/src/github.com/Masterminds/$m/v3"
done
mkdir -p "$cache/$key"
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$here:$work/gopath:/usr/share/gocode" \
  GOCACHE="$cache/go-build" CGO_ENABLED=0 \
  "$go" build -trimpath -o "$bin.tmp" tabby.dev/helm-render >&2
mv "$bin.tmp" "$bin"
echo "$bin"
