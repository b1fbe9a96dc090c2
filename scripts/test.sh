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
# The reference origin web server for web seed tests.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# bench/tests/smoke.rs: namespaces and tc caps, kill(1) for process groups,
# and a font for the plot's labels.
command -v tc >/dev/null || missing+=(iproute2)
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || missing+=(procps)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# crates/tracker/tests: a real PostgreSQL server, started per test binary.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# crates/cli/tests/browser_handoff.rs: Debian's Chromium, driven from node.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# crates/cli/tests/agent_service.rs (`shoal agent install`): systemctl,
# systemd-analyze and `systemd --user` itself, and unshare(1) to give the
# test's user manager a mount namespace.
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v unshare >/dev/null || missing+=(util-linux)
# The Windows agent under Wine and the macOS/FreeBSD checks (issue 16; the
# steps are before `cargo test` below): Debian's Rust beside rustup's, with
# the standard library's source for -Zbuild-std, MinGW, Wine, and clang for
# ring's C code on macOS and FreeBSD.
[ -x /usr/bin/rustc ] || missing+=(rustc-web)
[ -x /usr/bin/cargo ] || missing+=(cargo-web)
compgen -G '/usr/src/rustc-*/library/std/Cargo.toml' >/dev/null || missing+=(rust-web-src)
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || missing+=(wine64)
command -v clang >/dev/null || missing+=(clang)
# crates/cli/tests/agent_self_update.rs strips the copies of shoal it
# publishes as builds (binutils' strip).
command -v strip >/dev/null || missing+=(binutils)

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing test dependencies: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core for the browser test, exactly as locked; installed again
# only when the lock file changed since the last install.
browser=tests/browser
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.shoal-installed-lock"; then
  npm ci --prefix "$browser" --no-audit --no-fund
  cp "$browser/package-lock.json" "$browser/node_modules/.shoal-installed-lock"
fi

cargo fmt --all -- --check
# Small files, no dead-code allowances, no import cycles between modules
# (the rules are at the top of the script); its own tests first.
python3 scripts/check_structure.py --self-test
python3 scripts/check_structure.py
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The customer build (no tracker) must keep compiling and stay warning-free.
cargo clippy -p shoal-cli --bins --quiet --no-default-features -- -D warnings
# The Windows agent (linked, dist profile) and the Wine test fixtures, for
# crates/cli/tests/windows_wine.rs; then `cargo check` of the agent for
# macOS and FreeBSD. Each prints how long it took (README, "Portability").
bash scripts/windows/build.sh
bash scripts/cross/check.sh
cargo test --workspace

# Every fuzz target for 10 s (long runs: `bash scripts/fuzz.sh 120`). The
# fuzz crate is outside the workspace, so its formatting is checked here.
(cd fuzz && cargo fmt -- --check)
bash scripts/fuzz.sh 10
