-- wrk script for `bench/tracker_announces.sh --swarm`: one release, one
-- swarm of SIZE peers, announced through a trusted proxy so that the
-- peers come from many addresses (PER_IP peers per IP, within the
-- tracker's per-address session limit).
--
-- Arguments (after wrk's `--`): HASH SIZE THREADS MODE
--   HASH     the release's v1 info-hash, 40 hex digits
--   SIZE     peers in the swarm
--   THREADS  wrk's -t
--   MODE     populate: each thread announces its share of the peers
--            (`started`) once, in order, then goes round again;
--            measure: every request re-announces a peer drawn at random
--            from the whole population (steady state of a full swarm)
-- done() prints `bench …` lines on stdout.
--
-- Peer n: peer id -SW0001-<n, 12 digits>, address 10.a.b.c (PER_IP peers
-- per address, 250 addresses per /24, so neighbours-first selection has
-- ~1000 peers per subnet at 100,000), port 6881 + n % PER_IP, key n, and
-- one peer in three a seed. Totals stay zero: the cost measured is the
-- announce itself and the accounting window, not byte arithmetic.

-- write_totals() is shared with the other tracker wrk script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_totals.lua")

local PER_IP = 4
local NUMWANT = 50

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local hash = ""
local size = 0
local nthreads = 1
local mode = "measure"
local host = ""
local next_peer = 0
passes = 0            -- globals: read by done() through thread:get
populated = 0

local function percent_encode_hex(hex)
  return (hex:gsub("..", "%%%0"))
end

-- Peer n's address: 10.b.c.d, PER_IP peers per address, 250 per /24.
local function address(n)
  local ip = math.floor(n / PER_IP)
  local d = ip % 250 + 1
  local c = math.floor(ip / 250) % 250
  local b = math.floor(ip / 62500) % 250
  return string.format("10.%d.%d.%d", b, c, d)
end

function init(args)
  hash = percent_encode_hex(args[1])
  size = tonumber(args[2])
  nthreads = tonumber(args[3])
  mode = args[4]
  host = wrk.host .. ":" .. wrk.port
  next_peer = id
  math.randomseed(1234 + id)
end

local function announce(n, event)
  local left = 0
  if n % 3 ~= 0 then left = 1048576 end
  return "GET /announce?info_hash=" .. hash
    .. string.format("&peer_id=-SW0001-%012d&port=%d&key=%08x", n, 6881 + n % PER_IP, n)
    .. "&uploaded=0&downloaded=0&shoal_origin_bytes=0&left=" .. left
    .. "&numwant=" .. NUMWANT .. "&compact=1" .. event
    .. " HTTP/1.1\r\nHost: " .. host
    .. "\r\nX-Forwarded-For: " .. address(n)
    .. "\r\n\r\n"
end

function request()
  if mode == "populate" then
    local n = next_peer
    next_peer = n + nthreads
    if next_peer >= size then
      next_peer = id
      passes = passes + 1
    end
    if passes == 0 then populated = populated + 1 end
    return announce(n, "&event=started")
  end
  return announce(math.random(0, size - 1), "")
end

function done(summary, latency, requests)
  write_totals(summary, latency)
  for i, thread in ipairs(threads) do
    io.write(string.format("bench thread %d passes %d populated %d\n", i - 1,
      thread:get("passes"), thread:get("populated")))
  end
end
