-- POST /tweets with a fixed tweet and the node's API token from BENCH_TOKEN. Without an
-- Idempotency-Key every request creates a new tweet.
dofile("report.lua")

local token = os.getenv("BENCH_TOKEN")
if token == nil or token == "" then
   error("BENCH_TOKEN is not set; export the node's API token")
end

wrk.method = "POST"
wrk.path = "/tweets"
wrk.body = '{"tweet":"benchmark tweet: the quick brown fox jumps over the lazy dog"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
