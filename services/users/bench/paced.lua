-- wrk script: the URL given on the command line; with $PACE_MS set, each connection waits that
-- long between requests.
local pace = tonumber(os.getenv("PACE_MS") or "0")

function delay()
  return pace
end
