-- Shared by every scenario script in this directory (each sets `scenario`
-- and then loads this file). Driven by bench/bench.py through the environment:
--
--   BENCH_DATA     a Lua file generated per run and server, returning
--                  { users  = { {token=, ids={...}}, ... },  -- one user per connection
--                    writer = { token=, ids={...} },         -- the one-user scenarios' user
--                    deep   = { token=, skip=, cursor= } }   -- the deep-paging user
--   BENCH_POOL     delete scenarios: a Lua file returning { {token=, ids={...}}, ... },
--                  the chats that may be deleted: one entry per connection user
--                  (delete), or one entry, the writer's (delete_one_user, mix_one_writer)
--   BENCH_THREADS  wrk's -t (wrk's Lua cannot see it)
--   BENCH_PATH, BENCH_TOKEN   for the "static" scenario (one fixed GET)
--
-- wrk's Lua API has no notion of a connection: request() is called per
-- request with no connection identity. So each wrk thread owns the users of
-- its connections (CONNECTIONS/THREADS of them) and request() rotates through
-- them: with every connection waiting on one response, about one request per
-- user is in flight at any moment ("one user per connection").
--
-- One-user scenarios (create_one_user, delete_one_user, mix_one_writer) send
-- every request of every connection as the same user, the writer.
--
-- Deletes never run dry silently: each id of the pool is deleted once; a thread
-- whose pool is empty stops itself (wrk.thread:stop()) and reports it in done()
-- as "ran_dry", so bench.py can tell that the pool was too small (see README).
--
-- Errors: every non-2xx status is counted by response() per thread and summed
-- in done(), which prints one line "BENCH_JSON {...}" for bench.py (wrk's own
-- socket errors -- connect, read, write, timeout -- are included there too).

local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

-- main state: set up the threads and remember them for done() ---------------
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- thread state ---------------------------------------------------------------
statuses = {}   -- status code -> count, read back by done() with thread:get
ran_dry = 0     -- 1 once this thread's delete pool is empty (read back by done())

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local users = {}     -- this thread's users: {h=, hw=, ids=, pos=, get_reqs=, list_req=}
local ui = 0         -- round-robin position in users
local n = 0          -- write bodies built by this thread (unique titles)
local m = 0          -- mix: position in the 10-request pattern
local static_req     -- deep-page and static scenarios: one prebuilt request
local writer         -- one-user scenarios: the writer, built like users[i]
local pool = {}      -- delete scenarios: this thread's share, {user=, ids=, pos=} per user
local pi = 0         -- round-robin position in pool

local function headers_for(token, json)
  local h = { ["Authorization"] = "Bearer " .. token }
  if json then h["Content-Type"] = "application/json" end
  return h
end

local function next_user()
  ui = ui % #users + 1
  return users[ui]
end

local function get_req(u)
  u.pos = u.pos % #u.ids + 1
  return u.get_reqs[u.pos]
end

local function list_req(u)
  return u.list_req
end

local function create_req(u)
  n = n + 1
  return wrk.format("POST", "/chat/", u.hw,
    string.format('{"title":"wrk chat %d-%d","description":"made by the benchmark"}', tid, n))
end

local function patch_req(u)
  n = n + 1
  u.pos = u.pos % #u.ids + 1
  -- A new title every time, so that neither server can skip the write.
  return wrk.format("PATCH", "/chat/" .. u.ids[u.pos], u.hw,
    string.format('{"title":"patched %d-%d"}', tid, n))
end

-- The pool is empty: stop this thread (its connections send nothing more) and
-- hand wrk a harmless request for the slot it asked to fill.
local function dry()
  ran_dry = 1
  wrk.thread:stop()
  return wrk.format("GET", "/health/live")
end

local function delete_req(p)
  if p.pos > #p.ids then return dry() end
  local id = p.ids[p.pos]
  p.pos = p.pos + 1
  return wrk.format("DELETE", "/chat/" .. id, p.user.h)
end

local function next_pool()
  pi = pi % #pool + 1
  return pool[pi]
end

local builders = {
  get = function() return get_req(next_user()) end,
  list = function() return list_req(next_user()) end,
  create = function() return create_req(next_user()) end,
  patch = function() return patch_req(next_user()) end,
  -- 80 % reads, 20 % writes, in a fixed pattern per thread:
  -- 4 get, 4 list, 1 create, 1 patch out of every 10 requests.
  mix = function()
    local u = next_user()
    local slot = m % 10
    m = m + 1
    if slot < 4 then return get_req(u)
    elseif slot < 8 then return list_req(u)
    elseif slot == 8 then return create_req(u)
    else return patch_req(u) end
  end,
  create_one_user = function() return create_req(writer) end,
  delete = function() return delete_req(next_pool()) end,
  delete_one_user = function() return delete_req(pool[1]) end,
  -- One user, all connections: of every 10 requests 3 get, 3 list (first
  -- page), 2 create, 2 delete (from the pool, never a chat the gets read).
  mix_one_writer = function()
    local slot = m % 10
    m = m + 1
    if slot < 3 then return get_req(writer)
    elseif slot < 6 then return list_req(writer)
    elseif slot < 8 then return create_req(writer)
    else return delete_req(pool[1]) end
  end,
  list_deep_skip = function() return static_req end,
  list_deep_cursor = function() return static_req end,
  static = function() return static_req end,
}

local function make_user(src, i)
  local u = { h = headers_for(src.token, false), hw = headers_for(src.token, true),
              ids = src.ids, pos = (i * 7) % #src.ids, get_reqs = {} }
  for j, id in ipairs(src.ids) do
    u.get_reqs[j] = wrk.format("GET", "/chat/" .. id, u.h)
  end
  u.list_req = wrk.format("GET", "/chat/?limit=10", u.h)
  return u
end

function init(args)
  local build = builders[scenario]
  if build == nil then error("unknown scenario " .. tostring(scenario)) end
  request = build
  if scenario == "static" then
    static_req = wrk.format("GET", os.getenv("BENCH_PATH"),
      headers_for(os.getenv("BENCH_TOKEN"), false))
    return
  end
  local data = dofile(os.getenv("BENCH_DATA"))
  if scenario == "list_deep_skip" then
    static_req = wrk.format("GET", string.format("/chat/?skip=%d&limit=10", data.deep.skip),
      headers_for(data.deep.token, false))
    return
  elseif scenario == "list_deep_cursor" then
    if not data.deep.cursor then error("this server has no cursor for the deep user") end
    static_req = wrk.format("GET", "/chat/?limit=10&cursor=" .. data.deep.cursor,
      headers_for(data.deep.token, false))
    return
  end
  local one_user = scenario == "create_one_user" or scenario == "delete_one_user"
    or scenario == "mix_one_writer"
  if one_user then
    if not data.writer then error("BENCH_DATA has no writer") end
    writer = make_user(data.writer, tid)
  else
    local per = math.floor(#data.users / nthreads)
    if per < 1 then error("fewer users than wrk threads") end
    for i = tid * per + 1, (tid + 1) * per do
      table.insert(users, make_user(data.users[i], i))
    end
  end
  if scenario == "delete" or scenario == "delete_one_user" or scenario == "mix_one_writer" then
    local src = dofile(os.getenv("BENCH_POOL") or error("BENCH_POOL is not set"))
    if one_user then
      -- One user's pool shared out among the threads: thread t takes every
      -- nthreads-th id, so no id is deleted twice.
      local mine = {}
      for j = tid + 1, #src[1].ids, nthreads do table.insert(mine, src[1].ids[j]) end
      pool[1] = { user = writer, ids = mine, pos = 1 }
    else
      -- One entry per connection user, in the order of data.users.
      local per = math.floor(#src / nthreads)
      for k = 1, per do
        local i = tid * per + k
        pool[k] = { user = users[k], ids = src[i].ids, pos = 1 }
      end
    end
  end
end

-- main state again: sum the threads' status counts and print one JSON line ---
function done(summary, latency, requests)
  local codes, non2xx, dry_threads = {}, 0, 0
  for _, t in ipairs(threads) do
    dry_threads = dry_threads + (t:get("ran_dry") or 0)
    local s = t:get("statuses")
    if s then
      for code, count in pairs(s) do
        codes[code] = (codes[code] or 0) + count
        if code < 200 or code > 299 then non2xx = non2xx + count end
      end
    end
  end
  local parts = {}
  for code, count in pairs(codes) do
    table.insert(parts, string.format('"%d":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"wrk_status_errors":%d,"non2xx":%d,"statuses":{%s},"threads_ran_dry":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, non2xx, table.concat(parts, ","), dry_threads))
end
