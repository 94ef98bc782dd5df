-- wrk.lua - credentials from a file, one per request, and a JSON summary line.
-- env: EGB_FILE (one token/ticket per line; unset = no credential),
--      EGB_HEADER ("Authorization" -> "Bearer <tok>", otherwise "Cookie" -> "<name>=<tok>"),
--      EGB_COOKIE (cookie name), EGB_PATH (request path).
local creds = {}
local file = os.getenv("EGB_FILE")
local header = os.getenv("EGB_HEADER") or "Authorization"
local cookie = os.getenv("EGB_COOKIE") or "_edgegate"
local path = os.getenv("EGB_PATH") or "/api/x"
local extra = os.getenv("EGB_EXTRA")   -- "Name: value[|Name: value...]" added to every request
if file and file ~= "" then
  for line in io.lines(file) do
    if #line > 0 then creds[#creds + 1] = line end
  end
end
local n = #creds
local i = 0

function setup(thread)
  thread:set("offset", math.random(0, 1048576))
end

function init(args)
  -- each thread starts elsewhere in the list so threads do not send the same credential
  i = (offset or 0) % math.max(n, 1)
end

local function hdrs(c)
  local h = {}
  if extra and extra ~= "" then
    for item in extra:gmatch("[^|]+") do
      local k, v = item:match("^([^:]+):%s*(.*)$")
      h[k] = v
    end
  end
  if c then
    if header == "Authorization" then h["Authorization"] = "Bearer " .. c
    else h["Cookie"] = cookie .. "=" .. c end
  end
  return h
end

function request()
  local c = nil
  if n > 0 then
    i = i + 1
    if i > n then i = 1 end
    c = creds[i]
  end
  return wrk.format("GET", path, hdrs(c))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'EGB_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
