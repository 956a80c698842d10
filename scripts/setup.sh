#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test VitalTrends. Safe to re-run:
# it only installs what is missing.
set -euo pipefail

# C libraries and tools the Rust crates link against (the keychain client talks D-Bus).
packages=(build-essential pkg-config libdbus-1-dev curl ca-certificates)

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
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is missing. Install it from https://rustup.rs (stable, 1.85 or newer) and re-run." >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
echo "setup: ready"
