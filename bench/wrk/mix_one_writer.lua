-- Scenario "mix_one_writer": ONE user from every connection: per 10 requests 3 get, 3 list, 2 create, 2 delete.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "mix_one_writer"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
