#!/usr/bin/env bash
# Benchmark: one seed and one leecher over loopback, a 1 GiB signed hybrid
# release, plain TCP: shoal -> shoal next to libtorrent -> libtorrent (Debian's
# python3-libtorrent, through tests/interop/lt_driver.py), interleaved
# rounds in one run. Reports per implementation the median transfer time
# and throughput, leecher and seed CPU seconds, and the leecher's peak RSS.
#
# Usage: bench/pair_loopback.sh [SIZE_MIB=1024] [ROUNDS=3]
# Needs: cargo build --release --bin shoal; python3-libtorrent; GNU time.
# If RQBIT points at an rqbit binary (`cargo install rqbit --root DIR`),
# rqbit -> rqbit is measured too; its time is the leecher's wall time.
# If SHOAL_BASELINE points at another shoal binary (say, the previous
# commit's), it is measured too, as `shoal-base`, interleaved with this
# tree's: a refactor's "same figures within noise", side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-3}
shoal=$PWD/target/release/shoal
driver="/usr/bin/python3 $PWD/tests/interop/lt_driver.py"
[ -x "$shoal" ] || { echo "build first: cargo build --release --bin shoal" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 2; }

# shellcheck source=lib.sh
source bench/lib.sh
mkdir -p "$work/data"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data/release.bin"
# A signed hybrid, as shoal publishes releases; seed and leecher trust
# its publisher, as a customer's agent does (shoal then checks pieces
# against the v2 merkle tree alone).
publisher=$("$shoal" keygen --out "$work/key" 2> /dev/null)
"$shoal" publish "$work/data/release.bin" --key "$work/key" --out "$work/release.torrent" > /dev/null
cat "$work/data/release.bin" > /dev/null # page cache: measure the engines, not the disk

# GNU time ignores SIGINT while it waits, so signal the program it runs.
stop_seed() { pkill -INT -P "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

run_shoal() { shoal_pair shoal "$shoal"; }
run_shoal-base() { shoal_pair shoal-base "$SHOAL_BASELINE"; }

shoal_pair() { # shoal_pair LABEL BINARY
  local label=$1 bin=$2 port out
  port=$(free_port); out="$work/out-shoal"; rm -rf "$out"
  /usr/bin/time -f "%U %S %M" -o "$work/seed.time" "$bin" seed "$work/release.torrent" \
    --data "$work/data" --listen "127.0.0.1:$port" --trust "$publisher" --json > "$work/seed.log" 2>&1 &
  local seed=$!; pids+=("$seed")
  wait_line "$work/seed.log" '"event":"started"'
  /usr/bin/time -f "%U %S %M" -o "$work/get.time" "$bin" get "$work/release.torrent" \
    --out "$out" --peer "127.0.0.1:$port" --listen 127.0.0.1:0 --trust "$publisher" --json \
    > "$work/get.log" 2> "$work/get.err"
  stop_seed "$seed"
  cmp -s "$out/release.bin" "$work/data/release.bin" || { echo "$label: data differs" >&2; exit 1; }
  local seconds; seconds=$(grep '"event":"complete"' "$work/get.log" | sed 's/.*"seconds":\([0-9.]*\).*/\1/')
  read -r gu gs grss < <(tail -n1 "$work/get.time"); read -r su ss _ < <(tail -n1 "$work/seed.time")
  echo "$label $seconds $(echo "$gu + $gs" | bc) $(echo "$su + $ss" | bc) $grss"
}

run_libtorrent() {
  local port out
  port=$(free_port); out="$work/out-lt"; rm -rf "$out"; mkdir -p "$out"
  /usr/bin/time -f "%U %S %M" -o "$work/seed.time" $driver seed "$work/release.torrent" "$work/data" \
    --listen-port "$port" > "$work/seed.log" 2>&1 &
  local seed=$!; pids+=("$seed")
  wait_line "$work/seed.log" 'listening'
  /usr/bin/time -f "%U %S %M" -o "$work/get.time" $driver download "$work/release.torrent" "$out" \
    --peer "127.0.0.1:$port" > "$work/get.log" 2> "$work/get.err"
  stop_seed "$seed"
  cmp -s "$out/release.bin" "$work/data/release.bin" || { echo "libtorrent: data differs" >&2; exit 1; }
  local seconds; seconds=$(sed 's/.*"seconds": *\([0-9.]*\).*/\1/' "$work/get.log" | tail -1)
  read -r gu gs grss < <(tail -n1 "$work/get.time"); read -r su ss _ < <(tail -n1 "$work/seed.time")
  echo "libtorrent $seconds $(echo "$gu + $gs" | bc) $(echo "$su + $ss" | bc) $grss"
}

run_rqbit() {
  local port out
  port=$(free_port); out="$work/out-rqbit"; rm -rf "$out"
  local common=(-v warn --disable-dht --disable-dht-persistence)
  # `download --overwrite` over complete data checks it, then seeds.
  /usr/bin/time -f "%U %S %M" -o "$work/seed.time" "$RQBIT" "${common[@]}" --listen-port "$port" \
    download --disable-http-api --overwrite -o "$work/data" "$work/release.torrent" > "$work/seed.log" 2>&1 &
  local seed=$!; pids+=("$seed")
  for _ in $(seq 600); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  sleep 2 # its check of the existing data
  /usr/bin/time -f "%e %U %S %M" -o "$work/get.time" "$RQBIT" "${common[@]}" download --disable-http-api \
    -e --initial-peers "127.0.0.1:$port" -o "$out" "$work/release.torrent" > "$work/get.log" 2>&1
  stop_seed "$seed"
  cmp -s "$out/release.bin" "$work/data/release.bin" || { echo "rqbit: data differs" >&2; exit 1; }
  read -r seconds gu gs grss < <(tail -n1 "$work/get.time"); read -r su ss _ < <(tail -n1 "$work/seed.time")
  echo "rqbit $seconds $(echo "$gu + $gs" | bc) $(echo "$su + $ss" | bc) $grss"
}

impls=(shoal libtorrent)
[ -n "${SHOAL_BASELINE:-}" ] && impls=(shoal shoal-base libtorrent)
[ -n "${RQBIT:-}" ] && impls+=(rqbit)
results="$work/results"
for ((round = 1; round <= rounds; round++)); do
  for impl in "${impls[@]}"; do
    "run_$impl" | tee -a "$results"
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '\n%d MiB, %d rounds, %d cores, medians (leecher CPU includes hashing; seed CPU includes its initial check):\n' "$size_mib" "$rounds" "$(nproc)"
printf '%-11s %9s %9s %13s %11s %14s\n' impl seconds MB/s "leecher CPU s" "seed CPU s" "leecher RSS MiB"
for impl in "${impls[@]}"; do
  t=$(awk -v i=$impl '$1==i {print $2}' "$results" | median)
  gc=$(awk -v i=$impl '$1==i {print $3}' "$results" | median)
  sc=$(awk -v i=$impl '$1==i {print $4}' "$results" | median)
  rss=$(awk -v i=$impl '$1==i {print $5}' "$results" | median)
  printf '%-11s %9.2f %9.0f %13.2f %11.2f %14.1f\n' "$impl" "$t" "$(echo "$size_mib * 1.048576 / $t" | bc -l)" "$gc" "$sc" "$(echo "$rss / 1024" | bc -l)"
done
