-- wrk script: every connection waits DELAY_MS milliseconds before each request, so the load
-- is a steady rate (about connections * 1000 / DELAY_MS req/s) rather than saturation.
-- Usage: wrk -c10 -s paced.lua URL -- DELAY_MS        (c10k.py computes DELAY_MS from --rate)
local delay_ms = 0

function init(args)
  delay_ms = tonumber(args[1]) or 0
end

function delay()
  return delay_ms
end
