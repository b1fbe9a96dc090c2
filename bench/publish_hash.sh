#!/usr/bin/env bash
# Benchmark: `shoal publish` on a 1 GiB file, side by side with sha256sum and
# sha1sum on the same file, in one run. A hybrid torrent needs both hashes
# of every byte; the target is the time of the slower of the two tools, not
# their sum, which takes using every core.
#
# Usage: bench/publish_hash.sh [SIZE_MIB=1024] [ROUNDS=5]
# Prints each round, then medians and ratios. Needs a release build:
#   cargo build --release --bin shoal
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-5}
shoal=target/release/shoal
[ -x "$shoal" ] || { echo "build first: cargo build --release --bin shoal" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/release-$size_mib.bin"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
"$shoal" keygen --out "$work/key" >/dev/null 2>&1
cat "$file" > /dev/null # warm the page cache: measure hashing, not the disk

seconds() { # run "$@" and print its wall time in seconds
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

declare -a t256 t1 tpub o256 o1
for ((round = 1; round <= rounds; round++)); do
  # Interleave the three so machine noise falls on all of them alike.
  t256+=("$(seconds sha256sum "$file")")
  t1+=("$(seconds sha1sum "$file")")
  tpub+=("$(seconds "$shoal" publish "$file" --key "$work/key" --out "$work/out.torrent")")
  # OpenSSL uses the CPU's SHA instructions where coreutils may not: a
  # second, stricter yardstick for one-core hashing speed.
  o256+=("$(seconds openssl dgst -sha256 "$file")")
  o1+=("$(seconds openssl dgst -sha1 "$file")")
  printf 'round %d: sha256sum %.2f s, sha1sum %.2f s, openssl sha256 %.2f s, openssl sha1 %.2f s, shoal publish %.2f s\n' \
    "$round" "${t256[-1]}" "${t1[-1]}" "${o256[-1]}" "${o1[-1]}" "${tpub[-1]}"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m256=$(median "${t256[@]}")
m1=$(median "${t1[@]}")
mpub=$(median "${tpub[@]}")
mo256=$(median "${o256[@]}")
mo1=$(median "${o1[@]}")
slower=$(echo "if ($m256 > $m1) $m256 else $m1" | bc -l)
printf '\n%d MiB, %d rounds, %d cores, medians:\n' "$size_mib" "$rounds" "$(nproc)"
printf '  sha256sum       %6.2f s  (%4.0f MiB/s)\n' "$m256" "$(echo "$size_mib / $m256" | bc -l)"
printf '  sha1sum         %6.2f s  (%4.0f MiB/s)\n' "$m1" "$(echo "$size_mib / $m1" | bc -l)"
printf '  openssl sha256  %6.2f s  (%4.0f MiB/s)\n' "$mo256" "$(echo "$size_mib / $mo256" | bc -l)"
printf '  openssl sha1    %6.2f s  (%4.0f MiB/s)\n' "$mo1" "$(echo "$size_mib / $mo1" | bc -l)"
printf '  shoal publish   %6.2f s  (%4.0f MiB/s)\n' "$mpub" "$(echo "$size_mib / $mpub" | bc -l)"
printf '  publish / slower tool = %.2f, publish / (sha256sum + sha1sum) = %.2f\n' \
  "$(echo "$mpub / $slower" | bc -l)" "$(echo "$mpub / ($m256 + $m1)" | bc -l)"
oslower=$(echo "if ($mo256 > $mo1) $mo256 else $mo1" | bc -l)
printf '  publish / slower openssl = %.2f, publish / (openssl sha256 + sha1) = %.2f\n' \
  "$(echo "$mpub / $oslower" | bc -l)" "$(echo "$mpub / ($mo256 + $mo1)" | bc -l)"
