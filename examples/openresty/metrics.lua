-- Prometheus-style counters of the API calls every worker makes, from the client's
-- on_response hook (config.lua), kept in the shared dict "wdt_metrics" (nginx.conf):
--
--   GET /metrics
--   wdt_requests_total{method="sales.LogisticsSync.update",outcome="ok"} 3
--   wdt_requests_total{method="sales.LogisticsSync.update",outcome="api"} 1
--   wdt_request_tries_total{method="sales.LogisticsSync.update"} 4
--   wdt_request_seconds_sum{method="sales.LogisticsSync.update"} 0.012
--
-- outcome: "ok", or the error's kind (api, network, timeout, http, ...). The hook sees the
-- method, the outcome, the tries and the time; never the URL, the body or a credential.
local metrics = {}

local function add(dict, key, by)
  local _, err = dict:incr(key, by, 0)
  if err then ngx.log(ngx.WARN, "wdt metrics: ", err) end
end

function metrics.on_response(r)
  local dict = ngx.shared.wdt_metrics
  if not dict then return end
  local m = ('method="%s"'):format(r.method)
  add(dict, ('wdt_requests_total{%s,outcome="%s"}'):format(m, r.ok and "ok" or tostring(r.kind)), 1)
  add(dict, ("wdt_request_tries_total{%s}"):format(m), r.tries or 0)
  add(dict, ("wdt_request_seconds_sum{%s}"):format(m), r.elapsed)
end

-- GET /metrics: every counter, one "name{labels} value" line, sorted.
function metrics.serve()
  local dict = ngx.shared.wdt_metrics
  local keys = dict:get_keys(0)
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = k .. " " .. tostring(dict:get(k)) end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(table.concat(out, "\n"), "\n")
end

return metrics
