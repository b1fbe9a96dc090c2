#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS_PER_TARGET seconds (default
# 60), one after another, and prints executions, time and crashes for each.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Corpora start from the small seeds committed in fuzz/seeds/ plus real
# torrents (hybrid and v2, a file and a folder) that `shoal publish` makes
# here; what the fuzzer learns is kept in fuzz/corpus/ (not committed).
# A crash leaves its input in fuzz/artifacts/TARGET/ and makes the script
# exit non-zero after the other targets have run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

# cargo-fuzz passes nightly-only flags to rustc (-Z sanitizer, coverage
# options). Only the stable toolchain exists here, so let stable accept
# them; the fuzz crate is outside the workspace, so nothing else is built
# this way.
export RUSTC_BOOTSTRAP=1
# No sanitizer: safe Rust needs no AddressSanitizer to catch its bugs
# (panics and overflow checks do), and the runs go several times faster.
fuzz_flags=(-O --sanitizer none)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Real torrents from shoal itself, for the torrent and bencode targets.
cargo build --quiet --bin shoal
shoal="target/debug/shoal"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/release/docs"
head -c 70000 /dev/urandom >"$work/release/app.bin"
echo "read me" >"$work/release/docs/README.txt"
head -c 40000 /dev/urandom >"$work/single.bin"
"$shoal" keygen --out "$work/publisher.key" >/dev/null 2>&1
publish() { "$shoal" publish "$@" --key "$work/publisher.key" --piece-size 16k \
  --tracker http://127.0.0.1:6969/announce --web-seed http://127.0.0.1:8080/r/ >/dev/null; }
publish "$work/release" --out "$work/hybrid_folder.torrent" --version 1.0
publish "$work/single.bin" --out "$work/hybrid_single.torrent"
publish "$work/release" --out "$work/v2_folder.torrent" --v2-only --comment "v2 only"
publish "$work/single.bin" --out "$work/v2_single.torrent" --v2-only

for target in $(cd fuzz && cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
done
cp "$work"/*.torrent fuzz/corpus/torrent_parse/
cp "$work"/*.torrent fuzz/corpus/bencode_decode/

(cd fuzz && cargo fuzz build "${fuzz_flags[@]}")

failed=()
printf '%-18s %12s %8s %8s\n' target executions seconds crashes
for target in $(cd fuzz && cargo fuzz list); do
  log="$work/$target.log"
  status=0
  (cd fuzz && cargo fuzz run "${fuzz_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1) \
    >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
  crashes=0
  if ((status != 0)); then
    crashes=1
    failed+=("$target")
    grep -a -E 'panicked|crash-|oom-|timeout-|ERROR' "$log" | head -5 >&2 || true
  fi
  printf '%-18s %12s %8s %8s\n' "$target" "${runs:-?}" "${took:-$seconds}" "$crashes"
done

if ((${#failed[@]})); then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
