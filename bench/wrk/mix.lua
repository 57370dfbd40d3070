-- Scenario "mix": 80 % reads, 20 % writes: per 10 requests 4 get, 4 list, 1 create, 1 patch.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "mix"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
