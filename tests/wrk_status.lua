-- wrk script for tests/test_resilience.py: POST the JSON in BODY (GET when BODY is unset), paced
-- by DELAY_MS milliseconds per request per connection when set, counting every answer's status and
-- X-Model-Version. done() adds up the threads' counts and prints one line:
--   RESULT {"requests": N, "duration_us": N, "errors": {...}, "statuses": {"200": N}, "versions": {...}, ...}
local body = os.getenv("BODY")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  versions = {}
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  local version = headers["X-Model-Version"] or headers["x-model-version"] or "none"
  versions[version] = (versions[version] or 0) + 1
end

local function add(total, part)
  for key, count in pairs(part or {}) do
    total[key] = (total[key] or 0) + count
  end
end

local function object(counts)
  local parts = {}
  for key, count in pairs(counts) do
    table.insert(parts, string.format("%q: %d", key, count))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local all_statuses, all_versions = {}, {}
  for _, thread in ipairs(threads) do
    add(all_statuses, thread:get("statuses"))
    add(all_versions, thread:get("versions"))
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}, "statuses": %s, "versions": %s, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    object(all_statuses), object(all_versions), latency:percentile(50), latency:percentile(99), latency.max))
end
