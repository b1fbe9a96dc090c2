#!/usr/bin/env bash
# Benchmark: the browser hand-off streamed through the agent, against a
# plain `shoal get` of the same release on the same link. On loopback: an
# open tracker, the publisher's site (python3's http.server) serving the
# signed torrent, SEEDS `shoal seed`s holding the release, each capped at
# SEED_UP bytes/s (the link), and per round
#   * plain: `shoal get` of the torrent, timed from its start to its exit;
#   * stream: a fresh `shoal agent` handed the release as the publisher's
#     page hands it (`POST /v1/handoff` with the page's Origin), and the
#     stream URL read as a browser reads a download over one HTTP/1.1
#     connection, every byte compared with the release as it arrives. Time
#     to first byte (of the body, from opening the connection; the agent
#     adds and starts the release only then) and the in-order rate (size /
#     time from opening to the last byte).
# The two alternate which goes first, round by round. Each agent is
# stopped after its round, as nothing may seed the release but the seeds.
# Reports each round and the medians.
#
# Usage: bench/stream_handoff.sh [SIZE_MIB=1024] [ROUNDS=3] [SEED_UP=20M] [SEEDS=2]
# Needs: cargo build --release --bin shoal --bin shoal-tracker; curl; python3.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-3}
seed_up=${3:-20M}
seeds=${4:-2}
shoal=$PWD/target/release/shoal
tracker=$PWD/target/release/shoal-tracker
for bin in "$shoal" "$tracker"; do
  [ -x "$bin" ] || { echo "build first: cargo build --release --bin shoal --bin shoal-tracker" >&2; exit 2; }
done
command -v curl > /dev/null || { echo "needs curl: apt-get install curl" >&2; exit 2; }

# shellcheck source=lib.sh
source bench/lib.sh
now() { date +%s.%N; }

tport=$(free_port)
"$tracker" serve --open --listen "127.0.0.1:$tport" > "$work/tracker.log" 2>&1 &
pids+=($!)
sport=$(free_port)
mkdir -p "$work/site" "$work/data"
/usr/bin/python3 -m http.server "$sport" --bind 127.0.0.1 --directory "$work/site" > "$work/site.log" 2>&1 &
pids+=($!)
origin="http://127.0.0.1:$sport"
for _ in $(seq 100); do curl -s -o /dev/null "$origin/" && break; sleep 0.1; done

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data/release.bin"
publisher=$("$shoal" keygen --out "$work/key" 2> /dev/null)
# As a publisher publishes: default piece size, the page's origin in the
# signed manifest, no web seed (only peers hold the data).
"$shoal" publish "$work/data/release.bin" --key "$work/key" --origin "$origin" \
  --tracker "http://127.0.0.1:$tport/announce" --out "$work/site/release.torrent" > /dev/null
torrent_query=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' \
  "$origin/release.torrent")
for ((n = 0; n < seeds; n++)); do
  "$shoal" seed "$work/site/release.torrent" --data "$work/data" --listen 127.0.0.1:0 --json \
    --trust "$publisher" --max-up "$seed_up" > "$work/seed$n.log" 2>&1 &
  pids+=($!)
  wait_line "$work/seed$n.log" '"event":"started"'
done
cat "$work/data/release.bin" > /dev/null # page cache: measure shoal, not the disk

run_plain() {
  local out="$work/plain" start end
  rm -rf "$out"
  start=$(now)
  "$shoal" get "$work/site/release.torrent" --out "$out" --listen 127.0.0.1:0 --json \
    --trust "$publisher" > "$work/get.log" 2> "$work/get.err"
  end=$(now)
  grep -q '"bytes_from_origin":0' "$work/get.log" || { echo "plain: bytes came from an origin" >&2; exit 1; }
  cmp -s "$out/release.bin" "$work/data/release.bin" || { echo "plain: data differs" >&2; exit 1; }
  rm -rf "$out"
  echo "plain - $(echo "$end - $start" | bc)"
}

# Reads a stream URL as a browser reads a download; prints the seconds to
# the first body byte and to the last, or fails on any byte not the
# release's, a short or long body, or a 30 s stall.
read_stream() { # read_stream URL ORIGINAL
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import socket, sys, time, urllib.parse
url, original = urllib.parse.urlsplit(sys.argv[1]), open(sys.argv[2], "rb")
opened = time.monotonic()
s = socket.create_connection((url.hostname, url.port), timeout=30)
s.sendall(f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: */*\r\n"
          "Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n".encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    b = s.recv(1)
    if not b or len(head) > 16384:
        sys.exit(f"no response head: {head!r}")
    head += b
lines = head.decode("latin-1").split("\r\n")
if not lines[0].startswith("HTTP/1.1 200"):
    sys.exit(f"refused: {lines[0]}")
length = next(int(l.split(":", 1)[1]) for l in lines if l.lower().startswith("content-length:"))
at, first = 0, None
while at < length:
    chunk = s.recv(1 << 18)
    if not chunk:
        sys.exit(f"the stream ended at byte {at} of {length}")
    if first is None:
        first = time.monotonic() - opened
    if original.read(len(chunk)) != chunk:
        sys.exit(f"the stream differs from the release near byte {at}")
    at += len(chunk)
last = time.monotonic() - opened
if s.recv(1) or original.read(1):
    sys.exit("the stream and the release differ in length")
print(f"{first:.4f} {last:.4f}")
EOF
}

run_stream() {
  local aport state="$work/state" answer url first last
  rm -rf "$state" "$work/downloads"
  aport=$(free_port)
  cat > "$work/agent.toml" <<EOF
api = "127.0.0.1:$aport"
listen = "127.0.0.1:0"
state_dir = '$state'
download_dir = '$work/downloads'
trusted_publishers = ["$publisher"]
EOF
  "$shoal" agent --config "$work/agent.toml" > "$work/agent.log" 2> "$work/agent.err" &
  local agent=$!
  pids+=("$agent")
  wait_line "$work/agent.log" 'agent listening'
  answer=$(curl -sf -X POST -H "Origin: $origin" \
    "http://127.0.0.1:$aport/v1/handoff?torrent=$torrent_query")
  url=$(printf %s "$answer" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["stream_url"])')
  read -r first last < <(read_stream "$url" "$work/data/release.bin")
  kill "$agent"; wait "$agent" 2>/dev/null || true
  echo "stream $first $last"
}

results="$work/results"
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then order=(plain stream); else order=(stream plain); fi
  for what in "${order[@]}"; do
    "run_$what" | tee -a "$results"
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mb=$(echo "$size_mib * 1.048576" | bc -l)
plain=$(awk '$1=="plain" {print $3}' "$results" | median)
ttfb=$(awk '$1=="stream" {print $2}' "$results" | median)
stream=$(awk '$1=="stream" {print $3}' "$results" | median)
printf '\n%d MiB, %d seeds at %s/s each, %d rounds, %d cores, medians:\n' "$size_mib" "$seeds" "$seed_up" "$rounds" "$(nproc)"
printf '%-28s %12s %9s %9s\n' "" "first byte ms" seconds MB/s
printf '%-28s %12s %9.2f %9.1f\n' "plain shoal get" "-" "$plain" "$(echo "$mb / $plain" | bc -l)"
printf '%-28s %12.0f %9.2f %9.1f\n' "streamed hand-off, in order" "$(echo "$ttfb * 1000" | bc -l)" "$stream" "$(echo "$mb / $stream" | bc -l)"
printf 'streamed in-order rate / plain rate: %.3f\n' "$(echo "$plain / $stream" | bc -l)"
