#!/usr/bin/env bash
# Benchmark: what `shoal agent` costs the customer's machine. On loopback:
# an open tracker, one `shoal seed` of a SIZE_MIB release, and an agent
# that trusts its publisher. Reports
#   * the size of the `shoal` binary customers install (the agent is
#     `shoal agent`; the dist profile without the tracker feature), and the
#     stripped size of the developer's release build beside it;
#   * idle RSS and CPU over IDLE_S seconds with no release;
#   * peak RSS while downloading the release through the API (VmHWM, and
#     the highest VmRSS sampled every 0.2 s), and the download's time;
#   * idle RSS and CPU over IDLE_S seconds while seeding it with no peers.
#
# Usage: bench/agent_resources.sh [SIZE_MIB=1024] [IDLE_S=60]
# Needs: cargo build --release --bin shoal --bin shoal-tracker
#        cargo build --profile dist -p shoal-cli --bin shoal --no-default-features
#        curl; strip.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
idle_s=${2:-60}
shoal=$PWD/target/dist/shoal
release_shoal=$PWD/target/release/shoal
tracker=$PWD/target/release/shoal-tracker
build_hint="build first: cargo build --release --bin shoal --bin shoal-tracker && cargo build --profile dist -p shoal-cli --bin shoal --no-default-features"
for bin in "$shoal" "$release_shoal" "$tracker"; do
  [ -x "$bin" ] || { echo "$build_hint" >&2; exit 2; }
done
command -v curl > /dev/null || { echo "needs curl: apt-get install curl" >&2; exit 2; }
command -v strip > /dev/null || { echo "needs strip: apt-get install binutils" >&2; exit 2; }

# shellcheck source=lib.sh
source bench/lib.sh
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
mib() { echo "scale=1; $1 / 1024" | bc; }

# The dist profile strips already; strip again so the figure cannot
# include symbols whatever the profile says.
strip -o "$work/shoal.stripped" "$shoal"
binary_bytes=$(stat -c %s "$work/shoal.stripped")
strip -o "$work/release-shoal.stripped" "$release_shoal"
release_binary_bytes=$(stat -c %s "$work/release-shoal.stripped")

tport=$(free_port)
"$tracker" serve --open --listen "127.0.0.1:$tport" > "$work/tracker.log" 2>&1 &
pids+=($!)
mkdir -p "$work/data"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data/release.bin"
publisher=$("$shoal" keygen --out "$work/key" 2> /dev/null)
"$shoal" publish "$work/data/release.bin" --key "$work/key" \
  --tracker "http://127.0.0.1:$tport/announce" --out "$work/release.torrent" > /dev/null
"$shoal" seed "$work/release.torrent" --data "$work/data" --listen 127.0.0.1:0 --json \
  --trust "$publisher" > "$work/seed.log" 2>&1 &
pids+=($!)
wait_line "$work/seed.log" '"event":"started"'

aport=$(free_port)
cat > "$work/agent.toml" <<EOF
api = "127.0.0.1:$aport"
listen = "127.0.0.1:0"
state_dir = '$work/state'
download_dir = '$work/downloads'
trusted_publishers = ["$publisher"]
EOF
"$shoal" agent --config "$work/agent.toml" > "$work/agent.log" 2> "$work/agent.err" &
agent=$!
pids+=("$agent")
wait_line "$work/agent.log" 'agent listening'
api="http://127.0.0.1:$aport"
token=$(cat "$work/state/api-token")
hz=$(getconf CLK_TCK)

idle() { # idle LABEL: RSS now and CPU seconds over idle_s
  local before after
  sleep 3
  before=$(cpu_ticks "$agent")
  sleep "$idle_s"
  after=$(cpu_ticks "$agent")
  echo "$1 $(kib "$agent" VmRSS) $(echo "scale=3; ($after - $before) / $hz" | bc)"
}

read -r _ idle_rss idle_cpu < <(idle empty)

start=$(date +%s.%N)
curl -sf -X POST -H "X-Shoal-Token: $token" -H 'Content-Type: application/json' \
  -d "{\"torrent\": \"$work/release.torrent\"}" "$api/v1/releases" > /dev/null
peak_sampled=0
while :; do
  rss=$(kib "$agent" VmRSS)
  [ "$rss" -gt "$peak_sampled" ] && peak_sampled=$rss
  state=$(curl -sf -H "X-Shoal-Token: $token" "$api/v1/releases" | sed 's/.*"state":"\([a-z]*\)".*/\1/')
  [ "$state" = seeding ] && break
  [ "$state" = error ] && { echo "the download failed: $(curl -sf -H "X-Shoal-Token: $token" "$api/v1/releases")" >&2; exit 1; }
  sleep 0.2
done
seconds=$(echo "$(date +%s.%N) - $start" | bc)
hwm=$(kib "$agent" VmHWM)
cmp -s "$work/downloads/release.bin" "$work/data/release.bin" || { echo "the download differs" >&2; exit 1; }

read -r _ seed_rss seed_cpu < <(idle seeding)

printf '| measure | figure |\n|---|---|\n'
printf '| `shoal` binary, customer build (dist, no tracker) | %s MiB (%s bytes) |\n' "$(mib $((binary_bytes / 1024)))" "$binary_bytes"
printf '| `shoal` binary, release build with tracker, stripped | %s MiB (%s bytes) |\n' "$(mib $((release_binary_bytes / 1024)))" "$release_binary_bytes"
printf '| idle RSS, no release | %s MiB |\n' "$(mib "$idle_rss")"
printf '| idle CPU over %s s, no release | %s s |\n' "$idle_s" "$idle_cpu"
printf '| peak RSS downloading %s MiB (VmHWM) | %s MiB |\n' "$size_mib" "$(mib "$hwm")"
printf '| highest sampled RSS while downloading | %s MiB |\n' "$(mib "$peak_sampled")"
printf '| download time (API add to seeding) | %.1f s |\n' "$seconds"
printf '| RSS seeding it, no peers | %s MiB |\n' "$(mib "$seed_rss")"
printf '| CPU over %s s seeding it, no peers | %s s |\n' "$idle_s" "$seed_cpu"
