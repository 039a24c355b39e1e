#!/usr/bin/env bash
# images/tabby/build.sh [--tag REF] [--oci-archive FILE]: builds the tabby image on this
# machine with buildah and no registry: the same file tree as the Containerfile's
# (rootfs.sh makes both) committed on an empty base (`buildah from scratch`), with the same
# configuration. `npm run image` runs it after `npm run build`. See docs/image.md.
#
# Needs: root (buildah's storage; rootless buildah would need subuid maps), buildah, and what
# rootfs.sh needs (a built checkout, npm, a Debian bookworm machine with apt sources).
# The image goes to the containers storage buildah is configured for (CONTAINERS_STORAGE_CONF,
# else /etc/containers/storage.conf), where `podman run REF` finds it; --oci-archive writes
# it to a file too (`podman load -i FILE` elsewhere).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=images/tabby/versions.env
. "$here/versions.env"
version=$(node -p 'require(process.argv[1]).version' "$repo/packages/node/package.json")
tag=localhost/tabby:$version
archive=
while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=${2:?--tag needs a value} && shift 2 ;;
    --oci-archive) archive=${2:?--oci-archive needs a value} && shift 2 ;;
    *) echo "usage: build.sh [--tag REF] [--oci-archive FILE]" >&2 && exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || {
  echo "build.sh: needs root (buildah's storage)" >&2
  exit 1
}
command -v buildah >/dev/null || {
  echo "build.sh: buildah is not installed (Debian: apt-get install buildah)" >&2
  exit 1
}

start=$(date +%s)
work=$(mktemp -d)
ctr=
cleanup() {
  [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash "$here/rootfs.sh" "$work/rootfs"
# A tar keeps symlinks, modes and root ownership exactly as COPY --from keeps them.
tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .

revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
ctr=$(buildah from scratch)
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
# The same configuration as the Containerfile's final stage (scripts/test-image.mjs compares them).
buildah config \
  --env PATH=/opt/tabby/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --entrypoint '["/opt/tabby/bin/tabby-node"]' \
  --cmd '' \
  --user 0:0 \
  --workingdir / \
  --label org.opencontainers.image.title=tabby \
  --label "org.opencontainers.image.description=Tabby: tabby-node, the tabby CLI and the CNI plugins" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "dev.tabby.node.version=$NODE_VERSION" \
  --label "dev.tabby.node.integrity.x64=$NODE_INTEGRITY_X64" \
  --label "dev.tabby.node.integrity.arm64=$NODE_INTEGRITY_ARM64" \
  --label "dev.tabby.debian.suite=$DEBIAN_SUITE" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
ctr=
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$tag" "oci-archive:$archive:$tag" >/dev/null
fi
size=$(buildah inspect --type image --format '{{.FromImageID}}' "$tag" >/dev/null && buildah images --format '{{.Size}}' "$tag")
echo "build.sh: $tag ($size) in $(($(date +%s) - start)) s${archive:+; also $archive}"
