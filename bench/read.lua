-- wrk script: GET a product by id, cycling through the ids in the work file.
-- Usage: wrk -s bench/read.lua ... -- <workfile> <path-prefix>
function init(args)
  ids = {}
  for line in io.lines(args[1]) do table.insert(ids, line) end
  prefix = args[2]
  i = math.random(#ids)
  ok, other = 0, 0
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", prefix .. ids[i])
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end
