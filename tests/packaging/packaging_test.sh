#!/usr/bin/env bash
# packaging_test.sh BUILD_DIR SOURCE_DIR
# 1. systemd-analyze: the units verify, and the services' exposure is 2.0 or less.
# 2. cmake --install into a scratch root: binaries, units, sysusers, udev rules, examples
#    and docs land in their FHS places.
# 3. cpack builds the .deb; dpkg -x unpacks it into a scratch root with the same layout,
#    and its control file names the libraries it needs.
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Hardening score and unit syntax.
if command -v systemd-analyze >/dev/null; then
  for unit in loyaltyd.service loyalty-sync.service loyalty-hq.service; do
    out=$(systemd-analyze security --offline=yes "$src/systemd/$unit" 2>&1 | tail -n1)
    score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    [ -n "$score" ] || fail "no exposure score for $unit: $out"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "$unit exposure $score > 2.0"
    echo "ok: $unit exposure $score"
  done
else
  echo "skip: systemd-analyze not installed"
fi

# Every folder the example config puts a scanner under is one the service can write
# (ProtectSystem=strict makes the rest read-only): /run/loyaltyd is its RuntimeDirectory.
if grep -q '/run/loyaltyd' "$src/config/agent.example.toml"; then
  grep -qx 'RuntimeDirectory=loyaltyd' "$src/systemd/loyaltyd.service" ||
    fail "agent.example.toml uses /run/loyaltyd but loyaltyd.service has no RuntimeDirectory=loyaltyd"
  echo "ok: /run/loyaltyd is the service's RuntimeDirectory"
fi
# The udev rules give the group the configured scanners and nothing else: every rule names
# a vendor and a product (a vendor alone would give every device of the vendor).
while IFS= read -r rule; do
  case $rule in \#*|'') continue ;; esac
  echo "$rule" | grep -q 'idProduct}=="[0-9a-f]\{4\}"' || fail "udev rule without a product id: $rule"
done <"$src/systemd/60-loyaltyd-scanners.rules"
echo "ok: every udev rule names a vendor and a product"

check_layout() {  # check_layout ROOT
  local root=$1
  for f in usr/sbin/loyaltyd usr/lib/systemd/system/loyaltyd.service usr/lib/systemd/system/loyalty-sync.service \
           usr/lib/systemd/system/loyalty-sync.timer usr/lib/systemd/system/loyalty-hq.service \
           usr/lib/sysusers.d/loyaltyd.conf usr/lib/sysusers.d/loyalty-hq.conf usr/lib/udev/rules.d/60-loyaltyd-scanners.rules \
           usr/share/doc/loyaltyd/examples/agent.example.toml usr/share/doc/loyaltyd/architecture.md \
           usr/share/doc/loyaltyd/README.md; do
    [ -e "$root/$f" ] || fail "missing $f in $root"
  done
  for f in usr/bin/loyaltyctl usr/bin/loyalty-hq; do
    if [ -e "$build/ctl/loyaltyctl" ] || [ -e "$build/hq/loyalty-hq" ]; then
      case $f in
        usr/bin/loyaltyctl) [ ! -e "$build/ctl/loyaltyctl" ] || [ -e "$root/$f" ] || fail "missing $f" ;;
        usr/bin/loyalty-hq) [ ! -e "$build/hq/loyalty-hq" ] || [ -e "$root/$f" ] || fail "missing $f" ;;
      esac
    fi
  done
  [ -x "$root/usr/sbin/loyaltyd" ] || fail "loyaltyd is not executable"
  "$root/usr/sbin/loyaltyd" --version | grep -q '^loyaltyd ' || fail "installed loyaltyd does not run"
}

# 2. DESTDIR install.
DESTDIR="$work/destdir" cmake --install "$build" --prefix /usr >/dev/null
check_layout "$work/destdir"
if command -v systemd-analyze >/dev/null; then
  # Unit syntax and semantics (unknown keys, bad values); the commands are not installed
  # on this machine, which is the one complaint allowed.
  out=$(systemd-analyze verify "$work/destdir/usr/lib/systemd/system/loyaltyd.service" \
        "$work/destdir/usr/lib/systemd/system/loyalty-sync.service" \
        "$work/destdir/usr/lib/systemd/system/loyalty-sync.timer" \
        "$work/destdir/usr/lib/systemd/system/loyalty-hq.service" 2>&1 | grep -v -e 'is not executable' || true)
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  echo "ok: units verify"
fi
echo "ok: install layout"

# 3. The .deb.
if command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null; then
  (cd "$build" && cpack -G DEB -B "$work/deb" >/dev/null)
  deb=$(ls "$work"/deb/*.deb | head -n1)
  [ -f "$deb" ] || fail "no .deb produced"
  dpkg-deb -x "$deb" "$work/root"
  check_layout "$work/root"
  depends=$(dpkg-deb -f "$deb" Depends)
  for lib in libsqlite3 libssl3 libsystemd0 libusb-1.0-0 libcctz2 systemd tzdata; do
    echo "$depends" | grep -q "$lib" || fail "Depends lacks $lib: $depends"
  done
  dpkg-deb -e "$deb" "$work/control"
  [ -x "$work/control/postinst" ] || fail "no postinst"
  echo "ok: $(basename "$deb") ($depends)"
else
  echo "skip: dpkg-dev not installed"
fi
echo "packaging: all checks passed"
