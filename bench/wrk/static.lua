-- Scenario "static": one fixed GET (BENCH_PATH, BENCH_TOKEN) on every connection; used by the scale mode.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "static"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
