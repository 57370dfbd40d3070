-- Scale mode seed: one user with :big_n chats, one with :small_n, straight
-- into the tables (through the API this would take hours).
--
-- The chat counts (user_chat_counts) are kept by a row trigger on chats; a bulk
-- INSERT would fire it once per row (a million upserts of one slot). So, inside one
-- transaction (a failure leaves nothing half-done, triggers included): the
-- user triggers are disabled (the foreign-key checks, internal triggers, stay
-- on), the rows inserted, the count written to slot 0, the triggers
-- enabled again. ALTER TABLE ... DISABLE TRIGGER locks the table: run it
-- before the server starts, as bench.py does.
--
-- Ids are UUIDv7-shaped (48-bit millisecond timestamp of created_at, then
-- md5-derived bits), like the ids chat-api makes; created_at is spread over
-- the past year with microsecond jitter, oldest inserted first.
-- psql variables: big_user, small_user (uuids), big_n, small_n.
\set ON_ERROR_STOP on
BEGIN;
ALTER TABLE chats DISABLE TRIGGER USER;

INSERT INTO users (id, created_at)
VALUES (:'big_user', now() - interval '400 days'), (:'small_user', now() - interval '400 days');

INSERT INTO chats (id, user_id, title, description, created_at, updated_at, version)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3)
        || '8' || substr(h, 4, 15))::uuid,
       u.id, 'scale chat ' || n, 'made by the benchmark', ts, ts, 1
FROM (VALUES (:'big_user'::uuid, :big_n::bigint), (:'small_user'::uuid, :small_n::bigint)) AS u(id, total),
     LATERAL generate_series(u.total, 1, -1) AS n,
     LATERAL (SELECT now() - n * (interval '365 days' / u.total) - (n % 997) * interval '1 microsecond' AS ts,
                     md5(u.id::text || n) AS h) AS v;

INSERT INTO user_chat_counts (user_id, slot, n)
SELECT user_id, 0, count(*) FROM chats WHERE user_id IN (:'big_user', :'small_user') GROUP BY user_id;

ALTER TABLE chats ENABLE TRIGGER USER;
COMMIT;
