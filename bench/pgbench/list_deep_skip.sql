-- GET /chat/?skip=<deep_skip>&limit=10 as the deep user (skip mode): OFFSET
-- walks past deep_skip index entries; the total rides along. One statement.
\set deep :users + 1
\set lim 11
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version", (SELECT CAST(COALESCE(SUM("user_chat_counts"."n"), 0) AS BIGINT) FROM "user_chat_counts" WHERE "user_chat_counts"."user_id" = md5('u' || :deep)::uuid) AS "total" FROM "chats" WHERE "chats"."user_id" = md5('u' || :deep)::uuid ORDER BY "chats"."created_at" DESC, "chats"."id" DESC LIMIT :lim OFFSET :deep_skip;
