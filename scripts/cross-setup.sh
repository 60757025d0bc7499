#!/usr/bin/env bash
# Installs the ARM cross toolchain that scripts/cross.sh uses, from Debian packages only:
#   rustc-web/cargo-web 1.96 (+ the std source for -Zbuild-std), the prebuilt aarch64 std,
#   cross gcc for aarch64 and armv7 (gnueabihf), binutils-arm-none-eabi (size/nm for the
#   firmware), lld (rust-lld links the firmware), qemu-user and qemu-system-arm 10 from
#   bookworm-backports (bookworm's qemu 7.2 would remove the image's qemu-utils 10).
# Idempotent; a re-run takes seconds. Must run as root (CI runs as root).
#
# Global changes: the dpkg foreign architecture arm64, and a bookworm-backports apt source when
# none exists. Nothing under ~/.cargo or rustup is touched.
#
# armhf is deliberately NOT added as a dpkg architecture: armv7 builds its std from source
# (-Zbuild-std), and the armv7 cross gcc and libc are amd64 packages. A stale armhf index on the
# mirror ("File has unexpected size") makes apt keep the whole old bookworm-security suite, which
# then lacks rustc-web 1.96 for every architecture.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "cross-setup.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends)
t0=$(date +%s)

have_all() {
  [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] &&
    [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ] &&
    command -v aarch64-linux-gnu-gcc >/dev/null && command -v arm-linux-gnueabihf-gcc >/dev/null &&
    command -v arm-none-eabi-size >/dev/null && command -v qemu-aarch64 >/dev/null &&
    command -v qemu-arm >/dev/null && command -v qemu-system-arm >/dev/null &&
    [ -e "$(readlink -f /usr/bin/rust-lld)" ]
}
if have_all; then
  echo "cross-setup.sh: everything already installed ($(/usr/bin/rustc -V))"
  exit 0
fi

changed=0
# (Command outputs are captured before grep -q: under pipefail, `cmd | grep -q` fails at random
# when grep exits on the first match and cmd dies of SIGPIPE.)
foreign=$(dpkg --print-foreign-architectures)
grep -qx arm64 <<<"$foreign" || { dpkg --add-architecture arm64; changed=1; }
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > /etc/apt/sources.list.d/pocketrec-bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  changed=1
fi
if [ "$changed" = 1 ] || ! grep -q 'bookworm-security' <<<"$(apt-cache madison rustc-web)" ||
   ! apt-cache show libstd-rust-web-dev:arm64 >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update || echo "cross-setup.sh: WARNING: apt-get update reported errors (continuing)" >&2
fi

# A machine that already has armhf as a foreign architecture (added by another recipe) hits
# the stale armhf index above and keeps the old bookworm-security suite. If nothing armhf is
# installed, drop the architecture and refresh once more.
if ! grep -q 'bookworm-security' <<<"$(apt-cache madison rustc-web)" &&
   grep -qx armhf <<<"$(dpkg --print-foreign-architectures)" &&
   ! grep -qx armhf <<<"$(dpkg-query -W -f='${Architecture}\n' 2>/dev/null || true)"; then
  echo "cross-setup.sh: removing the unused armhf architecture (its index is stale)"
  dpkg --remove-architecture armhf
  apt-get -o DPkg::Lock::Timeout=600 update || true
fi

"${APT[@]}" install \
  rustc-web cargo-web rust-web-src rust-web-llvm \
  libstd-rust-web-dev:arm64 \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
  binutils-arm-none-eabi
# /usr/bin/rust-lld is a symlink to lld-NN, which nothing above depends on.
lld_pkg=$(basename "$(readlink /usr/bin/rust-lld)")
dpkg -s "$lld_pkg" >/dev/null 2>&1 || "${APT[@]}" install "$lld_pkg"
"${APT[@]}" install -t bookworm-backports qemu-user qemu-system-arm qemu-utils

echo "cross-setup.sh: $(/usr/bin/rustc -V); rust-lld -> $(readlink -f /usr/bin/rust-lld)"
echo "cross-setup.sh: $(qemu-aarch64 --version | head -1)"
echo "cross-setup.sh: done in $(( $(date +%s) - t0 ))s"
