-- Scenario "list_deep_cursor": GET /chat/?limit=10&cursor=<c> as the deep user, c naming item DEEP_SKIP (cursor mode; chat-api only).
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "list_deep_cursor"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
