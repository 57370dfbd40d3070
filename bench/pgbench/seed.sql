-- Seeds bench_pgbench (schema made by `chat-api migrate`) with the same shape
-- the HTTP scenarios get through the API, but with ids pgbench can compute:
--   user k (1..users)      id = md5('u' || k)::uuid, chats c = (k-1)*per_user + 1 .. k*per_user
--   chat c                 id = md5('c' || c)::uuid
--   the deep user          k = users + 1, deep_chats chats with ids md5('d' || j)::uuid
-- created_at is spread one millisecond apart, like chats made one after another.
-- The chat counts (user_chat_counts) are maintained by the triggers on chats, as in production.
-- psql variables: users, per_user, deep_chats.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO "users" ("id", "created_at")
SELECT md5('u' || k)::uuid, now() - interval '1 day'
FROM generate_series(1, :users + 1) AS k;

INSERT INTO "chats" ("id", "user_id", "title", "description", "created_at", "updated_at", "version")
SELECT md5('c' || c)::uuid, md5('u' || ((c - 1) / :per_user + 1))::uuid,
       'seeded chat ' || c, 'made by the benchmark',
       now() - c * interval '1 millisecond', now() - c * interval '1 millisecond', 1
FROM generate_series(1, :users * :per_user) AS c;

INSERT INTO "chats" ("id", "user_id", "title", "description", "created_at", "updated_at", "version")
SELECT md5('d' || j)::uuid, md5('u' || (:users + 1))::uuid,
       'deep chat ' || j, 'made by the benchmark',
       now() - j * interval '1 millisecond', now() - j * interval '1 millisecond', 1
FROM generate_series(1, :deep_chats) AS j;
COMMIT;
