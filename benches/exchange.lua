-- wrk script: POST /exchange as the demo gateway with a static demo session.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- base64("demo-gateway:demo-gateway-secret")
wrk.headers["Authorization"] = "Basic ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ="
wrk.body = '{"subject_token":"demo-admin-session","audience":"product-inventory","request":{"method":"GET","path":"/branches/1/products"}}'

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT requests=%d non2xx=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, non2xx, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
