-- wrk script: each request places the next pre-created draft order from the work file.
-- Usage: wrk -s bench/place.lua ... -- <workfile> ; each line "order_id token".
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  jobs = {}
  for line in io.lines(args[1]) do
    local id, token = line:match("^(%S+) (%S+)$")
    table.insert(jobs, {id, token})
  end
  step = tonumber(args[2])
  next_job = index + 1
  ok, conflict, other = 0, 0, 0
  body = '{"card_number":"4242424242424242"}'
end

function request()
  local job = jobs[next_job]
  if job == nil then
    -- out of drafts: ask for something harmless so wrk can finish; counted as "other"
    return wrk.format("GET", "/livez")
  end
  next_job = next_job + step
  return wrk.format("POST", "/v1/orders/" .. job[1] .. "/place",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. job[2]}, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
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
