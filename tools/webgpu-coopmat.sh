#!/usr/bin/env bash
# Runs the webgpu test pass where Dawn offers subgroup matrices without a GPU: Mesa's lavapipe from
# Mesa 26 (trixie-backports) implements VK_KHR_cooperative_matrix, bookworm's backport (25.0, what CI
# installs) does not. So: a Debian trixie chroot with that Mesa, this checkout bind-mounted into it,
# this machine's node binary, and the webgpu suites run there, where float16 matrix products and
# convolutions take the subgroup-matrix kernels (test/webgpu_subgroup.test.ts runs instead of skipping).
#
#   sudo tools/webgpu-coopmat.sh [CHROOT_DIR]     (default /opt/trixie-coopmat; needs root and the network)
#
# Build first (npm run build && npm run build:test). The chroot is made once (debootstrap, about
# 150 MB) and reused; extra arguments after CHROOT_DIR replace the test files.
set -euo pipefail
root="${1:-/opt/trixie-coopmat}"
shift || true
repo="$(cd "$(dirname "$0")/.." && pwd)"
mirror=http://deb.debian.org/debian

if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  debootstrap --variant=minbase trixie "$root" "$mirror"
fi
if ! chroot "$root" dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q bpo13; then
  echo "deb $mirror trixie-backports main" > "$root/etc/apt/sources.list.d/backports.list"
  chroot "$root" apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie-backports mesa-vulkan-drivers libvulkan1 >/dev/null
fi
cp "$(command -v node)" "$root/usr/local/bin/node"

mkdir -p "$root$repo"
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount "$m" || true; done; }
trap cleanup EXIT
for m in /proc /dev "$repo"; do
  if ! mountpoint -q "$root$m"; then mount --bind "$m" "$root$m"; mounted+=("$root$m"); fi
done

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  # package.json's test:suite:webgpu, minus the browser test (no Chromium in the chroot).
  read -r -a files < <(node -e 'const s=require(process.argv[1]).scripts["test:suite:webgpu"]; console.log(s.split(" ").filter(w=>w.startsWith("build/test/")&&!w.includes("browser")).join(" "))' "$repo/package.json")
fi
chroot "$root" env MIXPREC_BACKEND=webgpu bash -c "cd '$repo' && node -e \"import('./dist/index.js').then(async (mx) => { const b = await mx.setBackend('webgpu'); console.log('adapter: ' + b.adapterDescription + '; matrix units: ' + b.subgroupMatrix); })\" && node --test ${files[*]}"
