-- GET /chat/?limit=10: the page (one row more than the limit tells whether a
-- next page exists) with the caller's total (X-Total-Count) as a scalar
-- subquery: one statement, autocommit, as chat-api sends it.
\set k (:client_id % :users) + 1
\set lim 11
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version", (SELECT CAST(COALESCE(SUM("user_chat_counts"."n"), 0) AS BIGINT) FROM "user_chat_counts" WHERE "user_chat_counts"."user_id" = md5('u' || :k)::uuid) AS "total" FROM "chats" WHERE "chats"."user_id" = md5('u' || :k)::uuid ORDER BY "chats"."created_at" DESC, "chats"."id" DESC LIMIT :lim;
