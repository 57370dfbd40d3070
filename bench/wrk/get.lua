-- Scenario "get": GET /chat/{id} of the connection's user, cycling through that user's ids.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "get"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
