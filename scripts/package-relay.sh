#!/usr/bin/env bash
# Builds the relay's Debian package: target/relay-deb/vitaltrends-relay_<version>_<arch>.deb.
#
#   scripts/package-relay.sh                  # cargo build --release, then package
#   scripts/package-relay.sh --binary PATH    # package a binary built elsewhere (the test does)
#   scripts/package-relay.sh --out DIR
#   scripts/package-relay.sh --fast           # gzip -1 instead of xz (tests)
#
# Plain dpkg-deb, no cargo-deb: nothing to install beyond Debian's own tools. The package holds
# the binary, the systemd unit (installed, not enabled: it needs secrets first), the settings
# file as a conffile (an upgrade never overwrites the operator's copy), the example Caddyfile and
# docs/DEPLOY.md. Why a .deb rather than a tarball: see docs/DEPLOY.md.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/relay-deb"
compress=(-Zxz)
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    *) echo "package-relay: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release -p relay --bin vitaltrends-relay
  binary="target/release/vitaltrends-relay"
fi
[ -x "$binary" ] || { echo "package-relay: $binary is not an executable" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
pkg="$root/pkg"

install -D -m 0755 "$binary" "$pkg/usr/bin/vitaltrends-relay"
install -D -m 0644 deploy/vitaltrends-relay.service "$pkg/lib/systemd/system/vitaltrends-relay.service"
install -D -m 0640 deploy/relay.env "$pkg/etc/vitaltrends/relay.env"
install -D -m 0644 deploy/Caddyfile "$pkg/usr/share/doc/vitaltrends-relay/Caddyfile"
install -D -m 0644 docs/DEPLOY.md "$pkg/usr/share/doc/vitaltrends-relay/DEPLOY.md"
cat > "$pkg/usr/share/doc/vitaltrends-relay/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vitaltrends-relay
License: MIT
COPY

mkdir -p "$pkg/DEBIAN"
echo "/etc/vitaltrends/relay.env" > "$pkg/DEBIAN/conffiles"
size="$(du -sk "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: vitaltrends-relay
Version: $version
Architecture: $arch
Maintainer: VitalTrends <ops@vitaltrends.invalid>
Section: net
Priority: optional
Installed-Size: $size
Depends: libc6, systemd
Recommends: caddy
Description: VitalTrends relay: WHOOP webhooks, token broker, device event streams
 The one server of VitalTrends. It verifies WHOOP's signed webhooks, brokers WHOOP sign-in
 and token refreshes so the desktop app never holds the client secret, and streams each
 user's events to their devices. Run it behind Caddy; see
 /usr/share/doc/vitaltrends-relay/DEPLOY.md.
CONTROL
# The unit is picked up, but not started: it needs the client id and secret first.
cat > "$pkg/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  # An upgrade restarts a relay that is running; a first install leaves it stopped.
  if systemctl is-active --quiet vitaltrends-relay.service; then
    systemctl restart vitaltrends-relay.service || true
  fi
fi
POST
cat > "$pkg/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop vitaltrends-relay.service >/dev/null 2>&1 || true
fi
PRERM
cat > "$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/vitaltrends-relay_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
