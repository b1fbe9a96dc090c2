#!/usr/bin/env bash
# Benchmark: announces per second that shoal-tracker answers with the
# embedded SQLite backend and with PostgreSQL, driven by wrk over loopback,
# and a check that the accounting totals afterwards are exact.
#
# Per backend and round: a fresh database (PostgreSQL: a throwaway cluster
# for the whole invocation, a new database per round), one publisher, R
# registered releases (small random files), the tracker on CPU 0 and wrk
# (2 threads) on CPU 1. tracker_announces.lua gives every wrk thread its own
# peers (P per release, so R*P sessions) and makes each announce of a
# session report fixed growth, so the expected totals follow from how many
# announces each thread sent. After wrk, the tracker is stopped with SIGTERM
# (which writes the last accounting batch), started again on the same
# database, and /api/v1/usage is compared with the expectation.
#
# With --swarm SIZES instead: announce throughput against ONE swarm of each
# size (comma-separated, e.g. 1000,30000,100000). Per backend, size and
# round: a fresh database and tracker (behind --trusted-proxy 127.0.0.1),
# one release; tracker_swarm.lua first announces every peer (`started`,
# 4 peers per X-Forwarded-For address, so within the per-address session
# limit), the script checks through /metrics that the swarm holds exactly
# SIZE peers, then wrk re-announces peers drawn at random from that
# population for --duration seconds: the steady state of a full swarm.
# The summary shows medians per size and the ratio of the largest size's
# rate to the smallest's.
#
# Usage: bench/tracker_announces.sh [sqlite|postgres|both] [OPTIONS]
#   --swarm SIZES     the swarm-size benchmark above (default: off)
#   --duration S      wrk run per round, seconds (default 20)
#   --connections C   wrk connections (default 64)
#   --releases R      registered releases (default 20)
#   --peers P         peers per release, even, at most 55000 (default 300)
#   --rounds N        rounds per backend; the summary shows medians (default 1)
#   --batch-secs N    the tracker's accounting batch window (default 5)
#   --no-pin          let tracker and wrk share both cores instead
# Builds nothing: needs target/release/shoal and target/release/shoal-tracker
#   (cargo build --release --bin shoal --bin shoal-tracker).
# Installs nothing: needs wrk (Debian package `wrk`), curl, taskset
#   (util-linux), and for postgres the server (Debian package `postgresql`).
# Exits 1 when any round's totals differ from the expected ones.
set -euo pipefail
cd "$(dirname "$0")/.."

backends=both duration=20 connections=64 releases=20 peers=300 rounds=1 batch_secs=5 pin=1 swarm_sizes=""
threads=2
settle=3 # last seconds of each wrk run: announces repeat, nothing grows
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    sqlite|postgres|both) backends=$1 ;;
    --duration) duration=$2; shift ;;
    --swarm) swarm_sizes=$2; shift ;;
    --connections) connections=$2; shift ;;
    --releases) releases=$2; shift ;;
    --peers) peers=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --batch-secs) batch_secs=$2; shift ;;
    --no-pin) pin=0 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$backends" = both ] && backends="sqlite postgres"
[ $((peers % threads)) -eq 0 ] && [ "$peers" -le 55000 ] \
  || { echo "--peers must be a multiple of $threads, at most 55000 (each peer has its own port)" >&2; exit 2; }
[ "$duration" -ge $((settle + 5)) ] || { echo "--duration must be at least $((settle + 5)) s" >&2; exit 2; }
[ "$connections" -ge "$threads" ] || { echo "--connections must be at least $threads" >&2; exit 2; }

shoal=$PWD/target/release/shoal
tracker=$PWD/target/release/shoal-tracker
script=$PWD/bench/tracker_announces.lua
swarm_script=$PWD/bench/tracker_swarm.lua
for bin in "$shoal" "$tracker"; do
  [ -x "$bin" ] || { echo "missing $bin; build first: cargo build --release --bin shoal --bin shoal-tracker" >&2; exit 2; }
done
need() { command -v "$1" > /dev/null || { echo "needs $1, from the Debian package $2: apt-get install $2" >&2; exit 2; }; }
need wrk wrk
need curl curl
need taskset util-linux
if [ "$pin" = 1 ] && [ "$(nproc)" -lt 2 ]; then
  echo "one core only: running unpinned" >&2; pin=0
fi
if [ "$pin" = 1 ]; then
  tracker_cpu=(taskset -c 0) wrk_cpu=(taskset -c 1)
else
  tracker_cpu=() wrk_cpu=()
fi

work=$(mktemp -d /tmp/shoal-announces.XXXXXX)
tracker_pid="" wrk_job="" pg_root=""
cleanup() {
  # wrk_job is a subshell timing `timeout`, which passes SIGTERM on to wrk.
  [ -n "$wrk_job" ] && kill -TERM $(ps -o pid= --ppid "$wrk_job") "$wrk_job" 2> /dev/null || true
  [ -n "$tracker_pid" ] && kill -KILL "$tracker_pid" 2> /dev/null || true
  if [ -n "$pg_root" ]; then
    timeout 60 "${as_server[@]}" "$pg_bin/pg_ctl" stop -D "$pg_root/data" -m immediate -w -t 30 > /dev/null 2>&1 || true
    rm -rf "$pg_root"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL: a throwaway cluster on a Unix socket, as the store tests
# start one (crates/tracker/tests/common/pg.rs). Durable settings (fsync on):
# the batch writes are what a real deployment would pay, though the announce
# path never waits for them. PostgreSQL refuses to run as root: then its
# programs run as the `postgres` user.
pg_bin="" as_server=()
start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n1)
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server not found under /usr/lib/postgresql/*/bin: apt-get install postgresql" >&2; exit 2; }
  [ "$(id -u)" = 0 ] && as_server=(runuser -u postgres --)
  pg_root=$(mktemp -d /tmp/shoal-announces-pg.XXXXXX) # short: a socket path must stay under ~100 bytes
  [ ${#as_server[@]} -gt 0 ] && chown postgres:postgres "$pg_root"
  timeout 60 "${as_server[@]}" "$pg_bin/initdb" -D "$pg_root/data" -A trust -U shoal -E UTF8 \
    --no-locale --no-sync > "$pg_root/initdb.log" 2>&1 \
    || { cat "$pg_root/initdb.log" >&2; exit 1; }
  timeout 60 "${as_server[@]}" "$pg_bin/pg_ctl" -D "$pg_root/data" -l "$pg_root/server.log" -w -t 30 \
    -o "-k $pg_root -p 5432 -c listen_addresses=''" start > /dev/null \
    || { tail -n 20 "$pg_root/server.log" >&2; exit 1; }
}
new_postgres_database() { # new_postgres_database NAME: creates it, prints its --db URL
  timeout 30 "$pg_bin/createdb" -h "$pg_root" -p 5432 -U shoal "$1"
  echo "postgres:///$1?host=$pg_root&port=5432&user=shoal"
}

# --- The tracker. /metrics needs the operator's token; tracker_flags adds
# what a mode needs.
metrics_token=bench-metrics-token-0123456789
echo "$metrics_token" > "$work/metrics.token"
tracker_flags=()
start_tracker() { # start_tracker DB LOG [taskset…]: sets tracker_pid and addr
  local db=$1 log=$2; shift 2
  : > "$log"
  "$@" "$tracker" serve --listen 127.0.0.1:0 --db "$db" --batch-secs "$batch_secs" \
    --metrics-token-file "$work/metrics.token" "${tracker_flags[@]}" > "$log" 2>&1 &
  tracker_pid=$!
  for _ in $(seq 300); do
    addr=$(sed -n 's|^listening on http://\(.*\)/announce$|\1|p' "$log")
    [ -n "$addr" ] && return 0
    kill -0 "$tracker_pid" 2> /dev/null || break
    sleep 0.1
  done
  echo "the tracker did not start; its log ($log):" >&2; tail -n 20 "$log" >&2; exit 1
}
stop_tracker() { # SIGTERM (the last batch is written), 60 s at most
  kill -TERM "$tracker_pid"
  for _ in $(seq 600); do
    kill -0 "$tracker_pid" 2> /dev/null || { wait "$tracker_pid" || true; tracker_pid=""; return 0; }
    sleep 0.1
  done
  echo "the tracker did not stop within 60 s of SIGTERM" >&2; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2> /dev/null || echo 0; } # utime + stime, all threads
# snapshot: "ns tracker_ticks db_ticks busy_ticks all_ticks"; the database is
# the postmaster and its children (the tracker's backend among them).
snapshot() {
  local db_ticks=0 pid postmaster
  if [ -n "$pg_root" ] && [ "$backend" = postgres ]; then
    postmaster=$(head -n1 "$pg_root/data/postmaster.pid")
    for pid in "$postmaster" $(ps -o pid= --ppid "$postmaster"); do
      db_ticks=$((db_ticks + $(cpu_ticks "$pid")))
    done
  fi
  awk -v ns="$(date +%s%N)" -v t="$(cpu_ticks "$tracker_pid")" -v d="$db_ticks" '
    /^cpu / {total = 0; for (i = 2; i <= 9; i++) total += $i; print ns, t, d, total - $5 - $6, total}' /proc/stat
}
metric() { sed -n "s/^$1 //p" "$2"; }
usage_total() { # usage_total FIELD FILE: its first value, which is in "totals"
  awk -v key="\"$1\":" '{
    i = index($0, key); if (!i) next
    rest = substr($0, i + length(key)); match(rest, /^[0-9]+/); print substr(rest, 1, RLENGTH); exit
  }' "$2"
}

# --- A fresh database for backend $1 (on PostgreSQL named $2) and a
# publisher `bench` in it whose key is $3/key: sets the caller's `db` (the
# --db URL) and `token` (the publisher's API token).
new_publisher() {
  local backend=$1 pg_name=$2 dir=$3 key_hex
  case $backend in
    sqlite) db="sqlite://$dir/tracker.db" ;;
    postgres) db=$(new_postgres_database "$pg_name") ;;
  esac
  key_hex=$(timeout 30 "$shoal" keygen --out "$dir/key" 2> /dev/null)
  token=$(timeout 30 "$tracker" publisher add bench --key "$key_hex" --db "$db" 2> /dev/null)
}

# --- One round: prints one result line, `backend round rate p50_ms p99_ms
# non2xx errors tracker_cpu% rss_mib wrk_cpu% db_cpu% other_cpu% totals_ok`
# (CPU in % of one core; other: the rest of the machine), and the details
# on stderr.
run_round() {
  local backend=$1 round=$2
  local dir=$work/$backend-$round db token
  mkdir -p "$dir/files"
  new_publisher "$backend" "bench_$round" "$dir"

  start_tracker "$db" "$dir/tracker.log" "${tracker_cpu[@]}"
  for r in $(seq "$releases"); do
    head -c $((64 * 1024)) /dev/urandom > "$dir/files/release-$r.bin"
    SHOAL_TOKEN="$token" timeout 60 "$shoal" publish "$dir/files/release-$r.bin" --key "$dir/key" \
      --out "$dir/release-$r.torrent" --tracker "http://$addr/announce" \
      --register "http://$addr" --json > "$dir/publish-$r.json" 2> "$dir/publish.err" \
      || { echo "registering release $r failed:" >&2; cat "$dir/publish.err" >&2; exit 1; }
  done
  grep -ho '"info_hash_v1": *"[0-9a-f]*"' "$dir"/publish-*.json | cut -d'"' -f4 > "$dir/hashes"
  [ "$(wc -l < "$dir/hashes")" -eq "$releases" ] || { echo "no info_hash_v1 in $dir/publish-*.json" >&2; exit 1; }

  local day_before day_after before after grow_until TIMEFORMAT='%U %S'
  day_before=$(date -u +%F)
  before=$(snapshot)
  grow_until=$(($(date +%s) + duration - settle))
  # In the background and waited for, so Ctrl-C or SIGTERM stops the run at once.
  ( time timeout $((duration + 60)) "${wrk_cpu[@]}" wrk -t "$threads" -c "$connections" -d "${duration}s" \
    --timeout 2s -s "$script" "http://$addr/announce" \
    -- "$dir/hashes" "$peers" "$threads" "$grow_until" > "$dir/wrk.out" 2>&1 ) 2> "$dir/wrk.time" &
  wrk_job=$!
  wait "$wrk_job" || { echo "wrk failed:" >&2; cat "$dir/wrk.out" >&2; exit 1; }
  wrk_job=""
  after=$(snapshot)
  local rss_kib; rss_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$tracker_pid/status")
  curl -sf --max-time 10 -H "Authorization: Bearer $metrics_token" "http://$addr/metrics" > "$dir/metrics"
  stop_tracker
  day_after=$(date -u +%F)

  start_tracker "$db" "$dir/tracker-after.log"
  curl -sf --max-time 30 -H "Authorization: Bearer $token" "http://$addr/api/v1/usage" > "$dir/usage.json"
  stop_tracker

  # Expected totals: see tracker_announces.lua, which also prints its
  # steps. Per thread, the sum of k over its sessions is its growing
  # announces; a session completed when its k reached complete_at.
  local expected
  expected=$(awk '
    $1 == "bench" && $2 == "steps" {down = $4; origin = $6; up = $8; complete_at = $10}
    $1 == "bench" && $2 == "thread" {
      sessions = $5; growing = $7; settle = $9
      # A session'"'"'s first announce (k = 1) is its baseline: never credited.
      grown += growing - (growing < sessions ? growing : sessions); all_sessions += sessions
      full = int(growing / sessions); extra = growing % sessions
      if (full >= complete_at) completions += sessions
      else if (full == complete_at - 1) completions += extra
      if (settle < 2 * sessions) short = 1
    }
    END {
      # The request wrk builds once to check the script is never sent: it
      # was its session'"'"'s k = 1, so that session'"'"'s baseline is k = 2.
      if (grown > 0) grown -= 1
      printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f %d\n", grown * (down - origin), grown * origin, 0,
        grown * up, 0, completions, all_sessions, short
    }' "$dir/wrk.out")
  local exp_peer exp_origin exp_unattr exp_up exp_flagged exp_compl exp_sessions settle_short
  read -r exp_peer exp_origin exp_unattr exp_up exp_flagged exp_compl exp_sessions settle_short <<< "$expected"
  local ok=yes field want got
  for pair in peer_bytes:$exp_peer origin_bytes:$exp_origin unattributed_bytes:$exp_unattr \
    uploaded_bytes:$exp_up flagged_bytes:$exp_flagged completions:$exp_compl peer_days:$exp_sessions; do
    field=${pair%%:*} want=${pair#*:}
    got=$(usage_total "$field" "$dir/usage.json")
    # peer_days counts a peer once per UTC day: a run across midnight counts more.
    [ "$field" = peer_days ] && [ "$day_before" != "$day_after" ] && continue
    if [ "$got" != "$want" ]; then
      ok=no; echo "  $backend round $round: $field expected $want, got ${got:-nothing}" >&2
    fi
  done
  if [ "$settle_short" = 1 ]; then
    ok=no; echo "  $backend round $round: the settle phase did not cover every session twice; lengthen the run" >&2
  fi

  local requests duration_us rate p50 p99 max_ms non2xx errors refused batch_errors rss_mib cpu
  requests=$(metric "bench requests" "$dir/wrk.out")
  duration_us=$(metric "bench duration_us" "$dir/wrk.out")
  rate=$(awk -v n="$requests" -v us="$duration_us" 'BEGIN {printf "%.0f", n / (us / 1e6)}')
  p50=$(awk -v us="$(metric "bench latency_p50_us" "$dir/wrk.out")" 'BEGIN {printf "%.2f", us / 1000}')
  p99=$(awk -v us="$(metric "bench latency_p99_us" "$dir/wrk.out")" 'BEGIN {printf "%.2f", us / 1000}')
  max_ms=$(awk -v us="$(metric "bench latency_max_us" "$dir/wrk.out")" 'BEGIN {printf "%.1f", us / 1000}')
  non2xx=$(metric "bench errors_status" "$dir/wrk.out")
  errors=$(awk '$1 == "bench" && $2 ~ /^errors_(connect|read|write|timeout)$/ {n += $3} END {print n + 0}' "$dir/wrk.out")
  refused=$(metric shoal_tracker_announces_refused_total "$dir/metrics")
  batch_errors=$(metric shoal_tracker_batch_errors_total "$dir/metrics")
  # tracker, wrk, database, and everything else on the machine (other
  # users' jobs, kernel threads): CPU in % of one core.
  cpu=$(echo "$before $after $(cat "$dir/wrk.time")" | awk -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" '{
    seconds = ($6 - $1) / 1e9
    tracker = 100 * ($7 - $2) / hz / seconds; wrk = 100 * ($11 + $12) / seconds
    db = 100 * ($8 - $3) / hz / seconds; busy = cores * 100 * ($9 - $4) / ($10 - $5)
    other = busy - tracker - wrk - db
    printf "%.0f %.0f %.0f %.0f", tracker, wrk, db, other < 0 ? 0 : other}')
  rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
  {
    echo "  $backend round $round: $requests announces answered in $duration s, tracker counted $(metric shoal_tracker_announces_total "$dir/metrics"), refused $refused, batch errors $batch_errors, latency max $max_ms ms"
    echo "  expected peer/origin/uploaded bytes $exp_peer/$exp_origin/$exp_up, completions $exp_compl, peer-days $exp_sessions: match $ok"
  } >&2
  [ "$refused" = 0 ] || ok=no
  # The totals assume a session's announces arrive in order (a `started`
  # overtaken by a later announce would restart the session): true when
  # no request takes as long as a thread's round over its sessions.
  if awk -v max="$max_ms" -v rate="$rate" -v t="$threads" -v s="$exp_sessions" \
    'BEGIN {exit !(max / 1000 * rate / t >= s / t)}'; then
    echo "  $backend round $round: latency max $max_ms ms is longer than a round over the sessions; announces may have been reordered" >&2
  fi
  local tracker_pct wrk_pct db_pct other_pct
  read -r tracker_pct wrk_pct db_pct other_pct <<< "$cpu"
  echo "$backend $round $rate $p50 $p99 $non2xx $errors $tracker_pct $rss_mib $wrk_pct $db_pct $other_pct $ok"
}

# --- The swarm-size benchmark (--swarm): one round prints
# `backend round size rate p50_ms p99_ms non2xx errors tracker_cpu% rss_mib peers_ok cpu_us_per_announce`.
run_swarm_round() {
  local backend=$1 round=$2 size=$3
  local dir=$work/$backend-$size-$round db token
  mkdir -p "$dir"
  new_publisher "$backend" "swarm_${size}_$round" "$dir"
  tracker_flags=(--trusted-proxy 127.0.0.1)
  start_tracker "$db" "$dir/tracker.log" "${tracker_cpu[@]}"
  head -c $((64 * 1024)) /dev/urandom > "$dir/release.bin"
  SHOAL_TOKEN="$token" timeout 60 "$shoal" publish "$dir/release.bin" --key "$dir/key" --out "$dir/release.torrent" \
    --tracker "http://$addr/announce" --register "http://$addr" --json \
    > "$dir/publish.json" 2> "$dir/publish.err" \
    || { echo "registering the release failed:" >&2; cat "$dir/publish.err" >&2; exit 1; }
  local hash
  hash=$(grep -o '"info_hash_v1": *"[0-9a-f]*"' "$dir/publish.json" | cut -d'"' -f4)
  metrics() { curl -sf --max-time 10 -H "Authorization: Bearer $metrics_token" "http://$addr/metrics"; }

  # Populate: one pass over the peers at least (the tracker answers
  # thousands a second; the margin covers a slow machine).
  local populate_secs=$((size / 4000 + 6))
  timeout $((populate_secs + 60)) "${wrk_cpu[@]}" wrk -t "$threads" -c "$connections" -d "${populate_secs}s" \
    --timeout 5s -s "$swarm_script" "http://$addr/announce" -- "$hash" "$size" "$threads" populate \
    > "$dir/populate.out" 2>&1 || { echo "wrk (populate) failed:" >&2; cat "$dir/populate.out" >&2; exit 1; }
  if awk '$1 == "bench" && $2 == "thread" && $4 < 1 {short = 1} END {exit !short}' "$dir/populate.out"; then
    echo "  $backend size $size round $round: populating did not finish one pass in ${populate_secs} s" >&2; exit 1
  fi
  metrics > "$dir/metrics.before"
  local peers_before refused_before
  peers_before=$(metric shoal_tracker_peers "$dir/metrics.before")
  refused_before=$(metric shoal_tracker_announces_refused_total "$dir/metrics.before")

  local before after TIMEFORMAT='%U %S'
  before=$(snapshot)
  ( time timeout $((duration + 60)) "${wrk_cpu[@]}" wrk -t "$threads" -c "$connections" -d "${duration}s" \
    --timeout 2s -s "$swarm_script" "http://$addr/announce" -- "$hash" "$size" "$threads" measure \
    > "$dir/wrk.out" 2>&1 ) 2> "$dir/wrk.time" &
  wrk_job=$!
  wait "$wrk_job" || { echo "wrk failed:" >&2; cat "$dir/wrk.out" >&2; exit 1; }
  wrk_job=""
  after=$(snapshot)
  local rss_kib; rss_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$tracker_pid/status")
  metrics > "$dir/metrics.after"
  stop_tracker
  local peers_after refused_after ok=yes
  peers_after=$(metric shoal_tracker_peers "$dir/metrics.after")
  refused_after=$(metric shoal_tracker_announces_refused_total "$dir/metrics.after")
  if [ "$peers_before" != "$size" ] || [ "$peers_after" != "$size" ] || [ "$refused_after" != "$refused_before" ]; then
    ok=no
    echo "  $backend size $size round $round: swarm held $peers_before then $peers_after peers (expected $size);" \
      "refused during the run: $((refused_after - refused_before))" >&2
  fi
  local requests duration_us rate p50 p99 non2xx errors tracker_pct
  requests=$(metric "bench requests" "$dir/wrk.out")
  duration_us=$(metric "bench duration_us" "$dir/wrk.out")
  rate=$(awk -v n="$requests" -v us="$duration_us" 'BEGIN {printf "%.0f", n / (us / 1e6)}')
  p50=$(awk -v us="$(metric "bench latency_p50_us" "$dir/wrk.out")" 'BEGIN {printf "%.2f", us / 1000}')
  p99=$(awk -v us="$(metric "bench latency_p99_us" "$dir/wrk.out")" 'BEGIN {printf "%.2f", us / 1000}')
  non2xx=$(metric "bench errors_status" "$dir/wrk.out")
  errors=$(awk '$1 == "bench" && $2 ~ /^errors_(connect|read|write|timeout)$/ {n += $3} END {print n + 0}' "$dir/wrk.out")
  tracker_pct=$(echo "$before $after" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", 100 * ($7 - $2) / hz / (($6 - $1) / 1e9)}')
  echo "  $backend size $size round $round: $requests announces in $duration s against $peers_after peers" >&2
  local us_per_announce
  us_per_announce=$(awk -v pct="$tracker_pct" -v r="$rate" 'BEGIN {printf "%.1f", pct * 10000 / r}')
  echo "$backend $round $size $rate $p50 $p99 $non2xx $errors $tracker_pct $(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}') $ok $us_per_announce"
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

if [ -n "$swarm_sizes" ]; then
  results=$work/results
  sizes=${swarm_sizes//,/ }
  echo "shoal-tracker announces against one swarm of $swarm_sizes peers, numwant 50," \
    "wrk $threads threads x $connections connections, ${duration} s per round, $rounds round(s)," \
    "$(nproc) cores, $([ "$pin" = 1 ] && echo "tracker on CPU 0, wrk on CPU 1" || echo unpinned)" >&2
  for backend in $backends; do
    [ "$backend" = postgres ] && [ -z "$pg_root" ] && start_postgres
    for round in $(seq "$rounds"); do
      for size in $sizes; do
        run_swarm_round "$backend" "$round" "$size" > "$work/line"
        tee -a "$results" < "$work/line"
      done
    done
  done
  swarm_median() { awk -v b="$1" -v s="$2" -v c="$3" '$1 == b && $3 == s {print $c}' "$results" | median; }
  printf '\nmedians over %d round(s); tracker CPU in %% of one core:\n' "$rounds"
  # CPU µs per announce: the tracker's CPU time over announces answered,
  # steadier than the rate when other work shares the machine.
  printf '%-9s %8s %11s %7s %7s %7s %6s %8s %9s %9s %6s\n' backend peers announces/s "p50 ms" "p99 ms" non-2xx errors \
    tracker "µs/annc" "RSS MiB" "full"
  failed=0
  for backend in $backends; do
    for size in $sizes; do
      full=$(awk -v b="$backend" -v s="$size" '$1 == b && $3 == s && $11 != "yes" {bad = 1} END {print bad ? "no" : "yes"}' "$results")
      [ "$full" = yes ] || failed=1
      printf '%-9s %8d %11.0f %7.2f %7.2f %7.0f %6.0f %7.0f%% %9.1f %9.1f %6s\n' "$backend" "$size" \
        "$(swarm_median "$backend" "$size" 4)" "$(swarm_median "$backend" "$size" 5)" \
        "$(swarm_median "$backend" "$size" 6)" "$(swarm_median "$backend" "$size" 7)" \
        "$(swarm_median "$backend" "$size" 8)" "$(swarm_median "$backend" "$size" 9)" \
        "$(swarm_median "$backend" "$size" 12)" "$(swarm_median "$backend" "$size" 10)" "$full"
    done
    smallest=${sizes%% *} largest=${sizes##* }
    awk -v b="$backend" -v lo="$(swarm_median "$backend" "$smallest" 4)" -v hi="$(swarm_median "$backend" "$largest" 4)" \
      -v s="$smallest" -v l="$largest" -v clo="$(swarm_median "$backend" "$smallest" 12)" \
      -v chi="$(swarm_median "$backend" "$largest" 12)" \
      'BEGIN {printf "%-9s %d peers against %d: rate ratio %.3f, CPU per announce ratio %.3f\n", b, l, s, hi / lo, chi / clo}'
  done
  exit "$failed"
fi

# The accounting benchmark: every announce from 127.0.0.1, so the
# per-address limits are lifted.
tracker_flags=(--max-sessions-per-ip 1000000 --completions-per-ip 1000000)
results=$work/results
sessions=$((releases * peers))
echo "shoal-tracker announces: $releases releases x $peers peers ($sessions sessions), numwant 20," \
  "wrk $threads threads x $connections connections, ${duration} s per round, $rounds round(s)," \
  "$(nproc) cores, $([ "$pin" = 1 ] && echo "tracker on CPU 0, wrk on CPU 1" || echo unpinned)" >&2
for backend in $backends; do
  [ "$backend" = postgres ] && [ -z "$pg_root" ] && start_postgres
  for round in $(seq "$rounds"); do
    run_round "$backend" "$round" > "$work/line" # not in a pipe: the round's tracker_pid must reach cleanup
    tee -a "$results" < "$work/line"
  done
done

column_median() { awk -v b="$1" -v c="$2" '$1 == b {print $c}' "$results" | median; }
printf '\nmedians over %d round(s); CPU in %% of one core (other: the rest of the machine):\n' "$rounds"
printf '%-9s %11s %7s %7s %7s %6s %8s %9s %8s %7s %8s %7s\n' backend announces/s "p50 ms" "p99 ms" non-2xx errors \
  "tracker" "RSS MiB" "wrk" "db" "other" "exact"
failed=0
for backend in $backends; do
  exact=$(awk -v b="$backend" '$1 == b && $13 != "yes" {bad = 1} END {print bad ? "no" : "yes"}' "$results")
  [ "$exact" = yes ] || failed=1
  printf '%-9s %11.0f %7.2f %7.2f %7.0f %6.0f %7.0f%% %9.1f %7.0f%% %6.0f%% %7.0f%% %7s\n' "$backend" \
    "$(column_median "$backend" 3)" "$(column_median "$backend" 4)" "$(column_median "$backend" 5)" \
    "$(column_median "$backend" 6)" "$(column_median "$backend" 7)" "$(column_median "$backend" 8)" \
    "$(column_median "$backend" 9)" "$(column_median "$backend" 10)" "$(column_median "$backend" 11)" \
    "$(column_median "$backend" 12)" "$exact"
done
exit "$failed"
