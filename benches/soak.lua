-- wrk script for benches/soak.sh: mixed traffic (exchange 70 %, JWKS 15 %, introspect
-- 10 %, revoke 5 %) as the demo gateway, counting answers by status per thread.
local basic = "Basic ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ="
local introspect_token = os.getenv("SOAK_TOKEN") or "x"
local revoke_token = os.getenv("SOAK_REVOKE_TOKEN") or "x"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  math.randomseed(os.time() + math.random(1000))
end

function request()
  local r = math.random(100)
  if r <= 70 then
    return wrk.format("POST", "/exchange", {["Content-Type"] = "application/json", ["Authorization"] = basic},
      '{"subject_token":"demo-admin-session","audience":"product-inventory","request":{"method":"GET","path":"/branches/1/products"}}')
  elseif r <= 85 then
    return wrk.format("GET", "/.well-known/jwks.json")
  elseif r <= 95 then
    return wrk.format("POST", "/introspect", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = basic},
      "token=" .. introspect_token)
  else
    return wrk.format("POST", "/revoke", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = basic},
      "token=" .. revoke_token)
  end
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, status .. "=" .. n) end
  table.sort(parts)
  io.write(string.format("SOAK requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.1f socket_errors=%d statuses=%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
