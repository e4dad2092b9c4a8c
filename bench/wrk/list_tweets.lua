-- GET of the URL given to wrk (for example /tweets?limit=20). wrk builds that request
-- once, so this script only adds the JSON report.
dofile("report.lua")
