-- P4: each request is one of 500 riders checking in with the current rotating code; every
-- rider is sent many times (retries). Riders with an even index also send an Idempotency-Key.
-- Per thread it records user_id -> check-in id from the answers so that done() can tell
-- whether every retry of a rider was answered with the same check-in.
local riders_file = os.getenv("BENCH_RIDERS_FILE")
local payload = os.getenv("BENCH_PAYLOAD")
local lat = os.getenv("BENCH_LAT")
local lng = os.getenv("BENCH_LNG")

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local tokens = {}
local counter = 0
local step = 1
local body = nil

function init(args)
  for line in io.lines(riders_file) do
    local index, token = line:match("^(%d+) (.+)$")
    table.insert(tokens, {index = tonumber(index), token = token})
  end
  -- threads take interleaved riders so that together they cover all of them early on
  step = tonumber(os.getenv("BENCH_THREADS") or "2")
  counter = offset
  body = string.format('{"payload":"%s","lat":%s,"lng":%s,"accuracy":20}', payload, lat, lng)
  seen = {}
  statuses = {}
  mismatches = 0
  unparsed = 0
end

function request()
  local rider = tokens[(counter % #tokens) + 1]
  counter = counter + step
  local headers = {
    ["Authorization"] = "Bearer " .. rider.token,
    ["Content-Type"] = "application/json",
  }
  if rider.index % 2 == 0 then
    headers["Idempotency-Key"] = "bench-" .. rider.index
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, resp_body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and status ~= 201 then
    return
  end
  local id = resp_body:match('"id":%s*(%d+)')
  local user = resp_body:match('"user_id":%s*(%d+)')
  if not id or not user then
    unparsed = unparsed + 1
    return
  end
  if seen[user] == nil then
    seen[user] = id
  elseif seen[user] ~= id then
    mismatches = mismatches + 1
  end
end

function done(summary, latency, requests)
  local merged, statuses_all, mismatches_all, unparsed_all = {}, {}, 0, 0
  for _, thread in ipairs(threads) do
    for user, id in pairs(thread:get("seen")) do
      if merged[user] == nil then
        merged[user] = id
      elseif merged[user] ~= id then
        mismatches_all = mismatches_all + 1
      end
    end
    for status, count in pairs(thread:get("statuses")) do
      statuses_all[status] = (statuses_all[status] or 0) + count
    end
    mismatches_all = mismatches_all + thread:get("mismatches")
    unparsed_all = unparsed_all + thread:get("unparsed")
  end
  local riders = 0
  for _ in pairs(merged) do riders = riders + 1 end
  local parts = {}
  for status, count in pairs(statuses_all) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.3f,"p99_ms":%.3f,"riders_answered":%d,"mismatches":%d,' ..
    '"unparsed":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1000, riders, mismatches_all,
    unparsed_all, table.concat(parts, ",")))
end
