-- Scenario "list_deep_skip": GET /chat/?skip=<DEEP_SKIP>&limit=10 as the deep user (skip mode).
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "list_deep_skip"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
