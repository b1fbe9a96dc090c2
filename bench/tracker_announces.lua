-- wrk script for bench/tracker_announces.sh: announces whose accounting
-- totals are known in advance.
--
-- Arguments (after wrk's `--`): HASHES PEERS THREADS GROW_UNTIL
--   HASHES      file with one v1 info-hash (40 hex digits) per line
--   PEERS       peers per release, a multiple of THREADS
--   THREADS     wrk's -t
--   GROW_UNTIL  unix second after which announces stop growing
-- done() prints its summary, and the steps below, as `bench …` lines on stdout.
--
-- Each wrk thread owns its own peers: thread t has global peer numbers
-- t, t+THREADS, t+2*THREADS, … in every release, so no two threads ever
-- report for the same session (release, peer_id). A thread walks its
-- sessions round-robin; the k-th announce of a session reports
-- k*DOWN_STEP downloaded (k*ORIGIN_STEP of it from the origin) and
-- k*UP_STEP uploaded, sends `started` at k = 1 and `completed` (then
-- left = 0) at k = COMPLETE_AT.
--
-- Why the totals are exact: a session's announces are a full round
-- (thousands of requests) apart, so they reach the tracker in order, and
-- the tracker counts only the highest value a session reports. The sum of
-- k over a thread's sessions is the number of growing announces it made,
-- so expected bytes are just that count times the step. Until GROW_UNTIL
-- announces grow; after it, in the settle phase, each announce repeats its
-- session's last values: whatever was in flight when wrk stopped carries
-- no growth, and every session's highest values reach the tracker again
-- (as does the request wrk builds once to check the script and never
-- sends). The shell checks the settle phase made at least two full rounds.

-- write_totals() is shared with the other tracker wrk script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_totals.lua")

local DOWN_STEP = 262144   -- 256 KiB per announce: far below the 10 Gbit/s flag
local ORIGIN_STEP = 65536  -- of which from the origin
local UP_STEP = 131072
local COMPLETE_AT = 3
local NUMWANT = 20
local PORT_BASE = 10000    -- peer n listens on PORT_BASE + n: the tracker takes a new
                           -- peer id at a known ip:port for a restarted listener

-- Main state: the threads, for done().
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Thread state.
local prefixes = {}   -- per session: "GET /announce?info_hash=…&port=…&numwant=…"
local counts = {}     -- per session: the highest k sent
local next_session = 0
local grow_until = 0
local suffix = ""     -- " HTTP/1.1", Host, blank line
sessions = 0          -- globals: read by done() through thread:get
growing_requests = 0
settle_requests = 0

local function percent_encode_hex(hex)
  return (hex:gsub("..", "%%%0"))
end

function init(args)
  local hashes = {}
  for line in io.lines(args[1]) do
    if #line == 40 then table.insert(hashes, percent_encode_hex(line)) end
  end
  local peers, nthreads = tonumber(args[2]), tonumber(args[3])
  grow_until = tonumber(args[4])
  local host = wrk.host .. ":" .. wrk.port
  local own_peers = peers / nthreads
  -- Session j: release j % #hashes, the thread's (j // #hashes)-th peer.
  for q = 0, own_peers - 1 do
    local peer = q * nthreads + id
    for r = 1, #hashes do
      prefixes[sessions] = string.format(
        "GET /announce?info_hash=%s&peer_id=-SB0001-%012d&port=%d&numwant=%d&compact=1",
        hashes[r], peer, PORT_BASE + peer, NUMWANT)
      counts[sessions] = 0
      sessions = sessions + 1
    end
  end
  suffix = " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
end

function request()
  local j = next_session
  next_session = (j + 1) % sessions
  local k = counts[j]
  local event = ""
  if os.time() < grow_until then
    k = k + 1
    counts[j] = k
    growing_requests = growing_requests + 1
    if k == 1 then
      event = "&event=started"
    elseif k == COMPLETE_AT then
      event = "&event=completed"
    end
  else
    settle_requests = settle_requests + 1
  end
  local left = 0
  if k < COMPLETE_AT then left = (COMPLETE_AT - k) * DOWN_STEP end
  return prefixes[j]
    .. "&uploaded=" .. k * UP_STEP
    .. "&downloaded=" .. k * DOWN_STEP
    .. "&shoal_origin_bytes=" .. k * ORIGIN_STEP
    .. "&left=" .. left
    .. event .. suffix
end

function done(summary, latency, requests)
  write_totals(summary, latency)
  io.write(string.format("bench steps down %d origin %d up %d complete_at %d\n",
    DOWN_STEP, ORIGIN_STEP, UP_STEP, COMPLETE_AT))
  for i, thread in ipairs(threads) do
    io.write(string.format("bench thread %d sessions %d growing %d settle %d\n", i - 1,
      thread:get("sessions"), thread:get("growing_requests"), thread:get("settle_requests")))
  end
end
