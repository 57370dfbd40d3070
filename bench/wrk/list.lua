-- Scenario "list": GET /chat/?limit=10 (first page) as the connection's user.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "list"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
