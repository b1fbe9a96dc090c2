-- The lines every tracker wrk script prints when the run ends, one
-- `bench NAME VALUE` line per total, as bench/tracker_announces.sh reads
-- them. Loaded with dofile() by tracker_announces.lua and
-- tracker_swarm.lua (wrk has no module path of its own).

function write_totals(summary, latency)
  local e = summary.errors
  local lines = {
    {"requests", summary.requests},
    {"duration_us", summary.duration},
    {"errors_connect", e.connect},
    {"errors_read", e.read},
    {"errors_write", e.write},
    {"errors_status", e.status},
    {"errors_timeout", e.timeout},
    {"latency_p50_us", latency:percentile(50)},
    {"latency_p99_us", latency:percentile(99)},
    {"latency_max_us", latency.max},
  }
  for _, line in ipairs(lines) do
    io.write(string.format("bench %s %d\n", line[1], line[2]))
  end
end
