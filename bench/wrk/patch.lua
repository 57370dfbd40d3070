-- Scenario "patch": PATCH /chat/{id} {"title": <new every time>} on the connection's user's chats.
-- Run by bench/bench.py; see common.lua for the environment it needs.
scenario = "patch"
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
