#!/usr/bin/env bash
# Builds the customer agent for Windows (x86_64-pc-windows-gnu), linked
# with the dist profile, plus the test fixtures that run it under Wine
# (crates/cli/tests/windows_wine.rs).
#
# There is no rustup target for Windows here, so this uses Debian's Rust
# (rustc-web, cargo-web, rust-web-src) to build the standard library from
# source (-Zbuild-std, hence RUSTC_BOOTSTRAP) and MinGW to link. Everything
# lands in target/windows: sharing target/ with the rustup toolchain would
# make each compiler throw away the other's build.
#
# Output, in target/windows/x86_64-pc-windows-gnu/dist/:
#   shoal.exe               the customer agent (no tracker)
#   bcryptprimitives.dll    test-only ProcessPrng shim for Wine 8 (never shipped;
#                           see tests/wine/process_prng.c)
#   show_acl.exe            test-only: prints a file's owner and DACL
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in /usr/bin/rustc /usr/bin/cargo x86_64-w64-mingw32-gcc; do
  command -v "$tool" >/dev/null || {
    echo "scripts/windows/build.sh: $tool is missing; install rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64" >&2
    exit 1
  }
done

target=x86_64-pc-windows-gnu
out="target/windows/$target/dist"
started=$(date +%s)
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
  CARGO_TARGET_DIR=target/windows \
  /usr/bin/cargo build --quiet --target "$target" -Zbuild-std=std,panic_abort \
  --profile dist -p shoal-cli --bin shoal --no-default-features

# The fixtures are small C files; they are rebuilt every time (well under
# a second each).
x86_64-w64-mingw32-gcc -O2 -shared -o "$out/bcryptprimitives.dll" \
  tests/wine/process_prng.c tests/wine/process_prng.def -ladvapi32
x86_64-w64-mingw32-gcc -O2 -municode -o "$out/show_acl.exe" tests/wine/show_acl.c -ladvapi32

size=$(stat -c %s "$out/shoal.exe")
echo "windows build: $out/shoal.exe, $size bytes ($(awk "BEGIN{printf \"%.1f\", $size/1048576}") MiB), built in $(($(date +%s) - started)) s"
