-- GET /tweets/<id> with an id drawn uniformly from 1 to BENCH_MAX_ID, so that requests
-- spread over the whole table instead of hitting one cached row.
dofile("report.lua")

local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "")
if max_id == nil then
   error("BENCH_MAX_ID is not set; export the highest tweet id to request")
end

function init(args)
   math.randomseed(os.time())
end

function request()
   return wrk.format("GET", "/tweets/" .. math.random(1, max_id))
end
