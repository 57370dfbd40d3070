-- Scenario "create_one_user": POST /chat/ as ONE user (the writer) from every connection.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "create_one_user"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
