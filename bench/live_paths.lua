-- wrk: viewers of a live lecture (bench_live.py). Each request is the next path of the list
-- given after "--" (the variant playlist, then its newest segments), round robin; any answer
-- but 200 is counted by wrk's "Non-2xx" line.
local paths = {}
local counter = 0

function init(args)
  for i, path in ipairs(args) do paths[i] = path end
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
