-- PATCH /chat/{id} {"title": …}: one statement, version bumped, the row returned.
\set k (:client_id % :users) + 1
\set c (:k - 1) * :per_user + random(1, :per_user)
\set one 1
UPDATE "chats" SET "version" = "version" + :one, "updated_at" = now(), "title" = 'pgbench patch' WHERE "chats"."id" = md5('c' || :c)::uuid AND "chats"."user_id" = md5('u' || :k)::uuid RETURNING "id", "user_id", "title", "description", "created_at", "updated_at", "version";
