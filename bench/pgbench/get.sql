-- GET /chat/{id}: what chat-api sends (captured with log_statement = 'all'):
--   SELECT <columns> FROM "chats" WHERE "chats"."id" = $1 AND "chats"."user_id" = $2 LIMIT $3
-- Client i is user (i % users) + 1 (one user per client, as one per wrk
-- connection); the chat is one of that user's, at random. Ids are computed
-- from integers with md5() on the server (see seed.sql and README).
\set k (:client_id % :users) + 1
\set c (:k - 1) * :per_user + random(1, :per_user)
\set lim 1
SELECT "chats"."id", "chats"."user_id", "chats"."title", "chats"."description", "chats"."created_at", "chats"."updated_at", "chats"."version" FROM "chats" WHERE "chats"."id" = md5('c' || :c)::uuid AND "chats"."user_id" = md5('u' || :k)::uuid LIMIT :lim;
