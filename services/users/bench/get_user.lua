-- wrk script: GET /v1/users/{id} for random ids from $IDS_FILE; with $PACE_MS set, each
-- connection waits that long between requests (a fixed offered rate, since wrk has no -R).
local ids = {}
local pace = tonumber(os.getenv("PACE_MS") or "0")

function init(args)
  local file = assert(io.open(os.getenv("IDS_FILE"), "r"))
  for line in file:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  file:close()
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  return wrk.format("GET", "/v1/users/" .. ids[math.random(#ids)])
end

function delay()
  return pace
end

function response(status, headers, body)
  if status ~= 200 then
    wrk.thread:stop()
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
