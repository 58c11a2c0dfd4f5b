#!/usr/bin/env bash
# Builds the amd64 .deb and installs it into a scratch root with dpkg, then runs the installed
# binary's `magpie check` on the installed config with the installed plugins, verifies the
# unit, and purges. Uses the release binary when it is newer than the sources, else the dev
# one (stripped here), so CI pays no release build for it.
set -euo pipefail
cd "$(dirname "$0")/.."

tdir=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "package test: $*" >&2; exit 1; }

[ -f target/plugins/node.wasm ] || ci/build-plugins.sh
bin="$tdir/release/magpie"
if [ ! -x "$bin" ] || [ -n "$(find collector sdk Cargo.lock -newer "$bin" -print -quit)" ]; then
  cargo build --quiet -p magpie
  strip -o "$work/magpie" "$tdir/debug/magpie"
  bin="$work/magpie"
fi
ci/package-deb.sh --target x86_64-unknown-linux-gnu --bin "$bin" --out "$work"
deb="$work/magpie_$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)_amd64.deb"

info=$(dpkg-deb --info "$deb")
for field in "Package: magpie" "Architecture: amd64" "Depends: libc6 (>= 2." "Maintainer: "; do
  grep -qF "$field" <<<"$info" || fail "control has no \`$field\`"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/magpie/magpie.toml ] \
  || fail "conffiles is not /etc/magpie/magpie.toml"

# A scratch root with an empty dpkg database; maintainer scripts run outside a chroot with
# DPKG_ROOT set, and skip systemctl there.
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
dpkg_=(dpkg --root="$root" --force-depends --force-script-chrootless --log=/dev/null)
# libc6 is not in the scratch database: --force-depends, and its warning is expected.
"${dpkg_[@]}" -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
for f in usr/bin/magpie etc/magpie/magpie.toml lib/systemd/system/magpie.service \
  usr/lib/magpie/plugins/node.wasm usr/lib/magpie/plugins/remote-write.wasm; do
  [ -e "$root/$f" ] || fail "/$f not installed"
done
"${dpkg_[@]}" -s magpie | grep -q "Status: install ok installed" || fail "not installed in the dpkg database"

# The installed config, pointed into the scratch root (it names absolute paths).
sed -e "s|\"/usr/lib/magpie/plugins\"|\"$root/usr/lib/magpie/plugins\"|" \
  -e "s|\"/var/lib/magpie\"|\"$work/state\"|" "$root/etc/magpie/magpie.toml" >"$work/magpie.toml"
"$root/usr/bin/magpie" check "$work/magpie.toml"
if command -v systemd-analyze >/dev/null; then
  # verify checks that ExecStart= binaries exist: point them into the scratch root.
  mkdir "$work/unit"
  sed "s|/usr/bin/magpie|$root/usr/bin/magpie|g" "$root/lib/systemd/system/magpie.service" \
    >"$work/unit/magpie.service"
  systemd-analyze verify "$work/unit/magpie.service"
  # The exposure score of the unit's sandboxing (0 = fully confined, 10 = none); offline:
  # no running systemd needed. --offline needs systemd 250 or later.
  score=$(systemd-analyze security --offline=yes "$work/unit/magpie.service" 2>&1 \
    | sed -n 's/^→ Overall exposure level for magpie.service: //p')
  [ -n "$score" ] || fail "systemd-analyze security printed no exposure level"
  echo "package test: systemd-analyze security: $score"
fi

# A changed conffile survives removal; purge takes it.
echo "# local edit" >>"$root/etc/magpie/magpie.toml"
"${dpkg_[@]}" -r magpie >/dev/null
[ -f "$root/etc/magpie/magpie.toml" ] || fail "remove deleted the config"
[ ! -e "$root/usr/bin/magpie" ] || fail "remove left the binary"
"${dpkg_[@]}" -P magpie >/dev/null
[ ! -e "$root/etc/magpie/magpie.toml" ] || fail "purge left the config"
echo "package test: ok ($(stat -c %s "$deb") byte package)"
