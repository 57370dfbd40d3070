-- POST /chat/ as ONE user from every client (the HTTP scenario create_one_user):
-- the same statement as create.sql, all clients as user users + 2 (the writer;
-- provisioned by the statement itself on its first run). The count goes to
-- the connection's counter slot, so clients do not queue on one row.
\set k :users + 2
\set version 1
WITH "provisioned" AS (INSERT INTO "users" ("id", "created_at") VALUES (md5('u' || :k)::uuid, now()) ON CONFLICT ("id") DO NOTHING) INSERT INTO "chats" ("id", "user_id", "title", "description", "created_at", "updated_at", "version") VALUES (gen_random_uuid(), md5('u' || :k)::uuid, 'pgbench chat', 'made by the benchmark', now(), now(), :version);
