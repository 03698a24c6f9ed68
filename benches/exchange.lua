-- wrk script: POST /exchange as the demo gateway, the same request every time (so token
-- reuse answers all but the first): with a static demo session, or with `-- anonymous`
-- after the URL, no subject_token.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- base64("demo-gateway:demo-gateway-secret")
wrk.headers["Authorization"] = "Basic ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ="
wrk.body = '{"subject_token":"demo-admin-session","audience":"product-inventory","request":{"method":"GET","path":"/branches/1/products"}}'

init = function(args)
  if args[1] == "anonymous" then
    wrk.body = '{"audience":"product-inventory","request":{"method":"GET","path":"/branches/1/products"}}'
  end
end

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT requests=%d non2xx=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, non2xx, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
