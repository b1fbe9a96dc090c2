#!/usr/bin/env bash
# Runs every shoal test: formatting, lints, unit, integration and interop
# tests. On Debian it first installs what the tests need (the real
# BitTorrent clients we interoperate with), so nothing is ever skipped for
# want of an install step.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite needs, as `command-to-check package` pairs.
missing=()
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing+=(python3-libtorrent)
command -v transmission-cli >/dev/null || missing+=(transmission-cli)
command -v aria2c >/dev/null || missing+=(aria2)

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing test dependencies: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
