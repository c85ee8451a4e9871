-- P9: GET one path as each of the riders in BENCH_RIDERS_FILE ("index token" per line) in turn,
-- so every rider's first read is a miss and the rest are repeat reads, as on a real day.
local riders_file = os.getenv("BENCH_RIDERS_FILE")
local path = os.getenv("BENCH_PATH") or "/api/v1/me/points"
local tokens = {}
local counter = 0

function setup(thread)
  thread:set("offset", math.random(1000))
end

function init(args)
  for line in io.lines(riders_file) do
    local _, token = line:match("^(%d+) (.+)$")
    table.insert(tokens, token)
  end
end

request = function()
  counter = counter + 1
  local token = tokens[((counter + offset) % #tokens) + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
