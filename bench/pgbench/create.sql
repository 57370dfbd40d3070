-- POST /chat/: the user's provisioning and the insert in one statement (a
-- data-modifying CTE), which PostgreSQL runs as one transaction -- as chat-api
-- sends it. Client i is user (i % users) + 1 (the many-users scenario).
\set k (:client_id % :users) + 1
\set version 1
WITH "provisioned" AS (INSERT INTO "users" ("id", "created_at") VALUES (md5('u' || :k)::uuid, now()) ON CONFLICT ("id") DO NOTHING) INSERT INTO "chats" ("id", "user_id", "title", "description", "created_at", "updated_at", "version") VALUES (gen_random_uuid(), md5('u' || :k)::uuid, 'pgbench chat', 'made by the benchmark', now(), now(), :version);
