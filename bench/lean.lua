-- wrk script for the lean app: each request places a simple order with the next line's
-- products (taken from the mercato drafts, so both see the same product distribution).
-- Usage: wrk -s bench/lean.lua ... -- <workfile> <threads>; each line "customer p1 p2 p3".
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    local c, p1, p2, p3 = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    table.insert(bodies, string.format(
      '{"customer_id":"%s","lines":[["%s",1],["%s",1],["%s",1]]}', c, p1, p2, p3))
  end
  step = tonumber(args[2])
  next_job = index + 1
  ok, conflict, other = 0, 0, 0
end

function request()
  local body = bodies[(next_job - 1) % #bodies + 1]
  next_job = next_job + step
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then ok = ok + 1
  elseif status == 409 then conflict = conflict + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t_ok, t_conflict, t_other = 0, 0, 0
  for _, thread in ipairs(threads) do
    t_ok = t_ok + thread:get("ok")
    t_conflict = t_conflict + thread:get("conflict")
    t_other = t_other + thread:get("other")
  end
  io.write(string.format("RESULT ok=%d conflict=%d other=%d p50=%.3f p99=%.3f\n",
    t_ok, t_conflict, t_other, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
