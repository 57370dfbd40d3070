-- POST /chat/: one transaction, the user row provisioned on first write
-- (ON CONFLICT DO NOTHING), then the chat (whose trigger bumps
-- users.chat_count, locking that user's row until COMMIT: hence one user per
-- client). chat-api sends every value as a parameter; here the new id and the
-- times are made by the server (gen_random_uuid(), now()).
\set k (:client_id % :users) + 1
\set version 1
BEGIN;
INSERT INTO "users" ("id", "created_at") VALUES (md5('u' || :k)::uuid, now()) ON CONFLICT ("id") DO NOTHING;
INSERT INTO "chats" ("id", "user_id", "title", "description", "created_at", "updated_at", "version") VALUES (gen_random_uuid(), md5('u' || :k)::uuid, 'pgbench chat', 'made by the benchmark', now(), now(), :version);
COMMIT;
