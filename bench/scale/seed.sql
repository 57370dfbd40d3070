-- Scale mode seed: one user with :big_n chats, one with :small_n, straight
-- into the tables (through the API this would take hours).
--
-- users.chat_count is kept by a row trigger on chats; a bulk INSERT would fire
-- it once per row (a million UPDATEs of one users row). So, inside one
-- transaction (a failure leaves nothing half-done, triggers included): the
-- user triggers are disabled (the foreign-key checks, internal triggers, stay
-- on), the rows inserted, chat_count set to the true count, the triggers
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

INSERT INTO users (id, created_at, chat_count)
VALUES (:'big_user', now() - interval '400 days', 0), (:'small_user', now() - interval '400 days', 0);

INSERT INTO chats (id, user_id, title, description, created_at, updated_at, version)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3)
        || '8' || substr(h, 4, 15))::uuid,
       u.id, 'scale chat ' || n, 'made by the benchmark', ts, ts, 1
FROM (VALUES (:'big_user'::uuid, :big_n::bigint), (:'small_user'::uuid, :small_n::bigint)) AS u(id, total),
     LATERAL generate_series(u.total, 1, -1) AS n,
     LATERAL (SELECT now() - n * (interval '365 days' / u.total) - (n % 997) * interval '1 microsecond' AS ts,
                     md5(u.id::text || n) AS h) AS v;

UPDATE users SET chat_count = (SELECT count(*) FROM chats WHERE chats.user_id = users.id)
WHERE id IN (:'big_user', :'small_user');

ALTER TABLE chats ENABLE TRIGGER USER;
COMMIT;
