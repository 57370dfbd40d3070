-- Scenario "delete": DELETE /chat/{id} as the connection's user, each id of its pool once.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "delete"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
