-- GET /chat/?limit=10: the page (one row more than the limit tells whether a
-- next page exists), then the caller's total for X-Total-Count. Two
-- statements, autocommit, as chat-api sends them.
\set k (:client_id % :users) + 1
\set lim 11
\set one 1
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version" FROM "chats" WHERE "chats"."user_id" = md5('u' || :k)::uuid ORDER BY "chats"."created_at" DESC, "chats"."id" DESC LIMIT :lim;
SELECT "users"."chat_count" FROM "users" WHERE "users"."id" = md5('u' || :k)::uuid LIMIT :one;
