-- GET /chat/?limit=10&cursor=<c> as the deep user (cursor mode): the keyset
-- page after (cursor_ts, cursor_id) -- the item at depth deep_skip, passed with
-- -D by bench.py -- with the total. One statement.
\set deep :users + 1
\set lim 11
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version", (SELECT CAST(COALESCE(SUM("user_chat_counts"."n"), 0) AS BIGINT) FROM "user_chat_counts" WHERE "user_chat_counts"."user_id" = md5('u' || :deep)::uuid) AS "total" FROM "chats" WHERE "chats"."user_id" = md5('u' || :deep)::uuid AND ("chats"."created_at", "chats"."id") < (:cursor_ts, :cursor_id) ORDER BY "chats"."created_at" DESC, "chats"."id" DESC LIMIT :lim;
