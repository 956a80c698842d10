#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test VitalTrends. Safe to re-run:
# it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: C libraries the crates link against (D-Bus for the keychain; WebKitGTK, the tray's
# AppIndicator and librsvg for the Tauri app). Test: a virtual display, the WebKit WebDriver, a
# session bus with a notification daemon and a keychain, screenshots; Caddy and systemd-analyze
# for the relay's deployment files and its HTTPS suite.
packages=(
  build-essential pkg-config curl ca-certificates libdbus-1-dev libssl-dev
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
  xvfb webkit2gtk-driver dbus-x11 xdg-utils desktop-file-utils notification-daemon
  gnome-keyring libsecret-tools imagemagick xdotool libglib2.0-bin dbus-bin dbus-daemon
  openbox wmctrl
  caddy systemd
  python3 python3-venv
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian's caddy package enables a system-wide Caddy on ports 80/443; the tests run their own.
  if [[ " ${missing[*]} " == *" caddy "* ]] && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now caddy.service >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is missing. Install it from https://rustup.rs (stable, 1.89 or newer) and re-run." >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
command -v tauri-driver >/dev/null 2>&1 || cargo install tauri-driver --locked

# The webview's front end: dependencies as the lock file pins them (`npm install`, not `npm ci`:
# lock files written without registry URLs, as on these machines, list rollup's per-platform
# optional packages without versions, and `npm ci` refuses them), then the bundle Tauri embeds.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  npm --prefix ui install --no-audit --no-fund
fi
npm --prefix ui run build >/dev/null

# Python packages the suites use as independent clients and readers (scripts/python-requirements.txt
# says which and why), in a virtual environment under target/ so the system stays untouched.
venv=target/python
python=/usr/bin/python3
[ -x "$python" ] || python=python3
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
if ! cmp -s scripts/python-requirements.txt "$venv/.installed"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/python-requirements.txt
  cp scripts/python-requirements.txt "$venv/.installed"
fi
echo "setup: ready"
