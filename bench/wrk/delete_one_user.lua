-- Scenario "delete_one_user": DELETE /chat/{id} as ONE user (the writer) from every connection, each id of its pool once.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "delete_one_user"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
