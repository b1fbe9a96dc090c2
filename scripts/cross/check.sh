#!/usr/bin/env bash
# `cargo check` of the customer agent for macOS (aarch64-apple-darwin) and
# FreeBSD (x86_64-unknown-freebsd), so their cfg(target_os) code paths keep
# compiling. Checked, not built: linking needs the platforms' own system
# libraries (Apple's SDK, FreeBSD's libc), which a Linux host lacks; see
# README, "Portability".
#
# Like scripts/windows/build.sh, this uses Debian's Rust (rustc-web,
# cargo-web, rust-web-src) to build each standard library from source
# (-Zbuild-std, hence RUSTC_BOOTSTRAP). It shares the Windows build's
# target folder and profile: the build scripts and proc macros, compiled
# for this host, are then built once for all three targets (measured in a
# fresh clone: the two checks took 418 s in a folder of their own, 129 s
# after the Windows build in its folder).
#
# ring compiles C even for `cargo check`. With no SDK here, clang builds it
# freestanding: RING_CORE_NOSTDLIBINC is ring's own switch for building
# without libc headers, and include/TargetConditionals.h stands in for the
# one Apple header it still includes. Those objects are never linked.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in /usr/bin/rustc /usr/bin/cargo clang; do
  command -v "$tool" >/dev/null || {
    echo "scripts/cross/check.sh: $tool is missing; install rustc-web cargo-web rust-web-src clang" >&2
    exit 1
  }
done

ring_cflags="-ffreestanding -DRING_CORE_NOSTDLIBINC -isystem $PWD/scripts/cross/include"
for target in aarch64-apple-darwin x86_64-unknown-freebsd; do
  started=$(date +%s)
  env_target=${target//-/_}
  env "CC_$env_target=clang" "CFLAGS_$env_target=$ring_cflags" \
    RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=target/windows \
    /usr/bin/cargo check --quiet --target "$target" -Zbuild-std=std,panic_abort --profile dist \
    -p shoal-cli --bin shoal --no-default-features
  echo "cargo check for $target: ok in $(($(date +%s) - started)) s"
done
