-- Rotate over many stall tokens (one per line in the file named by TOKENS_FILE), so that every
-- request asks for a different badge.
local tokens = {}
local path = os.getenv("TOKENS_FILE")
for line in io.lines(path) do tokens[#tokens + 1] = line end
local prefix = os.getenv("BADGE_PREFIX") or "/api/v1/public/stalls/"
local counter = 0

function setup(thread)
  thread:set("offset", math.random(#tokens))
end

request = function()
  counter = counter + 1
  local token = tokens[((counter + offset) % #tokens) + 1]
  return wrk.format("GET", prefix .. token)
end
