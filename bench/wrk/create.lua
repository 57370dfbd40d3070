-- Scenario "create": POST /chat/ {"title": …, "description": …} as the connection's user.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "create"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
