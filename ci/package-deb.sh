#!/usr/bin/env bash
# Builds magpie's .deb from a built binary and the plugins in target/plugins
# (ci/build-plugins.sh), with dpkg-deb alone (no cargo-deb).
#
#   ci/package-deb.sh --target TRIPLE --bin PATH [--precompile-with HOST_MAGPIE --sign-with KEY]
#                     [--out DIR]
#
# With --precompile-with, the package is for the device build (no compiler): the plugins are
# precompiled for TRIPLE by HOST_MAGPIE (a default build of the same version; aarch64 from an
# x86_64 host needs `--features cross-compile`) and shipped as <name>.cwasm only. A .cwasm is
# native code and loads only when signed, so --sign-with KEY (the fleet's private key, made by
# `magpie key generate`) is required then: each .cwasm ships with its .sig, KEY.pub is
# installed as /etc/magpie/fleet.pub and the packaged config trusts it ([trust] keys). Without
# --precompile-with, plugins ship as <name>.wasm and the binary must be a default build.
#
# Release packages:
#   cargo build --release -p magpie && ci/package-deb.sh --target x86_64-unknown-linux-gnu \
#     --bin target/release/magpie
#   cargo build --release --target armv7-unknown-linux-gnueabihf -p magpie --no-default-features --features mqtt
#   ci/package-deb.sh --target armv7-unknown-linux-gnueabihf \
#     --bin target/armv7-unknown-linux-gnueabihf/release/magpie --precompile-with target/release/magpie \
#     --sign-with /secure/fleet
set -euo pipefail
cd "$(dirname "$0")/.."

target="" bin="" host="" key="" out="target/deb"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --precompile-with) host=$2; shift 2 ;;
    --sign-with) key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "package-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$target" ] && [ -x "$bin" ] || { echo "usage: $0 --target TRIPLE --bin PATH [--precompile-with HOST_MAGPIE --sign-with KEY] [--out DIR]" >&2; exit 2; }
if [ -n "$host" ] && { [ ! -f "$key" ] || [ ! -f "$key.pub" ]; }; then
  echo "package-deb: --precompile-with needs --sign-with KEY (KEY and KEY.pub from magpie key generate): devices load a .cwasm only when it is signed" >&2
  exit 2
fi
case "$target" in
  x86_64-*) arch=amd64 ;;
  aarch64-*) arch=arm64 ;;
  armv7-*gnueabihf) arch=armhf ;;
  *) echo "package-deb: no Debian architecture for $target" >&2; exit 2 ;;
esac
[ -f target/plugins/node.wasm ] || { echo "package-deb: no target/plugins; run ci/build-plugins.sh" >&2; exit 2; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
# The newest glibc symbol version the binary needs is the package's libc6 dependency.
glibc=$(readelf --dyn-syms -W "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/magpie_${version}_$arch"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/magpie/plugins" "$root/lib/systemd/system" \
  "$root/etc/magpie" "$root/usr/share/doc/magpie"
install -m 0755 "$bin" "$root/usr/bin/magpie"
for wasm in target/plugins/*.wasm; do
  name=$(basename "$wasm" .wasm)
  if [ -n "$host" ]; then
    "$host" plugin compile --target "$target" "$wasm" "$root/usr/lib/magpie/plugins/$name.cwasm" >/dev/null
    "$host" plugin sign --key "$key" "$root/usr/lib/magpie/plugins/$name.cwasm" >/dev/null
    chmod 0644 "$root/usr/lib/magpie/plugins/$name.cwasm" "$root/usr/lib/magpie/plugins/$name.cwasm.sig"
  else
    install -m 0644 "$wasm" "$root/usr/lib/magpie/plugins/$name.wasm"
  fi
done
install -m 0644 targets/systemd/magpie.service "$root/lib/systemd/system/magpie.service"
if [ "$arch" = armhf ]; then
  install -D -m 0644 targets/systemd/pulley.conf "$root/lib/systemd/system/magpie.service.d/pulley.conf"
fi
install -m 0644 targets/debian/magpie.toml "$root/etc/magpie/magpie.toml"
if [ -n "$host" ]; then
  install -m 0644 "$key.pub" "$root/etc/magpie/fleet.pub"
  printf '\n# The packaged .cwasm plugins are signed by this key.\n[trust]\nkeys = ["/etc/magpie/fleet.pub"]\n' \
    >>"$root/etc/magpie/magpie.toml"
fi
install -m 0644 README.md "$root/usr/share/doc/magpie/README.md"
cat >"$root/usr/share/doc/magpie/copyright" <<TXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: magpie
Source: $(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml)

Files: *
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
TXT

echo /etc/magpie/magpie.toml >"$root/DEBIAN/conffiles"
if [ -n "$host" ]; then echo /etc/magpie/fleet.pub >>"$root/DEBIAN/conffiles"; fi
if [ -n "$host" ]; then
  flavour="device build: no compiler, plugins precompiled for $target"
elif [ "$arch" = armhf ]; then
  flavour="plugins compiled at load by Cranelift to Pulley bytecode"
else
  flavour="plugins compiled at load by Cranelift"
fi
cat >"$root/DEBIAN/control" <<CTL
Package: magpie
Version: $version
Architecture: $arch
Maintainer: magpie developers <dev@magpie.invalid>
Depends: libc6 (>= $glibc)
Section: net
Priority: optional
Homepage: $(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml)
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Description: edge metrics collector with WebAssembly plugins
 magpie is Prometheus agent mode for small devices: WebAssembly plugins scrape
 host metrics and Prometheus exporters, a ring-buffered write-ahead log on disk
 keeps samples while the uplink is down, and exporters deliver them (remote
 write) when it returns.
 .
 This package: $flavour.
CTL

# DynamicUser= in the unit: no system user to create. The unit is enabled by the operator
# once an exporter is configured (systemctl enable --now magpie).
cat >"$root/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
  # An upgrade restarts a running collector on the new binary and plugins.
  if systemctl is-active --quiet magpie.service; then
    systemctl try-restart magpie.service || true
  fi
fi
SH
cat >"$root/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now magpie.service >/dev/null 2>&1 || true
fi
SH
cat >"$root/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # The WAL and cursors (StateDirectory=magpie; DynamicUser keeps them under private/).
  rm -rf "${DPKG_ROOT:-}/var/lib/magpie" "${DPKG_ROOT:-}/var/lib/private/magpie"
fi
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
SH
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

mkdir -p "$out"
deb="$out/magpie_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
printf '%s  %d bytes  (libc6 >= %s; %s)\n' "$deb" "$(stat -c %s "$deb")" "$glibc" "$flavour"
