-- GET /chat/?skip=<deep_skip>&limit=10 as the deep user (skip mode): the page
-- with OFFSET, then the total.
\set deep :users + 1
\set lim 11
\set one 1
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version" FROM "chats" WHERE "chats"."user_id" = md5('u' || :deep)::uuid ORDER BY "chats"."created_at" DESC, "chats"."id" DESC LIMIT :lim OFFSET :deep_skip;
SELECT "users"."chat_count" FROM "users" WHERE "users"."id" = md5('u' || :deep)::uuid LIMIT :one;
