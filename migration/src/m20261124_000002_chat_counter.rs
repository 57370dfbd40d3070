//! `users.chat_count`: each user's number of chats, kept by triggers in the same
//! transaction as every insert and delete on `chats` (whoever writes them), so
//! the list's `X-Total-Count` is one indexed read instead of a `count(*)` over
//! all of a user's rows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r#"
CREATE FUNCTION chats_maintain_chat_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE users SET chat_count = chat_count + 1 WHERE id = NEW.user_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE users SET chat_count = chat_count - 1 WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER chats_count_insert_delete AFTER INSERT OR DELETE ON chats
    FOR EACH ROW EXECUTE FUNCTION chats_maintain_chat_count();
CREATE TRIGGER chats_count_owner_change AFTER UPDATE OF user_id ON chats
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION chats_maintain_chat_count();
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS chats_count_owner_change ON chats;
DROP TRIGGER IF EXISTS chats_count_insert_delete ON chats;
DROP FUNCTION IF EXISTS chats_maintain_chat_count();
"#;

const SQLITE_UP: [&str; 3] = [
    "CREATE TRIGGER chats_count_insert AFTER INSERT ON chats BEGIN \
         UPDATE users SET chat_count = chat_count + 1 WHERE id = NEW.user_id; END",
    "CREATE TRIGGER chats_count_delete AFTER DELETE ON chats BEGIN \
         UPDATE users SET chat_count = chat_count - 1 WHERE id = OLD.user_id; END",
    "CREATE TRIGGER chats_count_owner_change AFTER UPDATE OF user_id ON chats \
         WHEN OLD.user_id IS NOT NEW.user_id BEGIN \
         UPDATE users SET chat_count = chat_count - 1 WHERE id = OLD.user_id; \
         UPDATE users SET chat_count = chat_count + 1 WHERE id = NEW.user_id; END",
];

const SQLITE_DOWN: [&str; 3] = [
    "DROP TRIGGER IF EXISTS chats_count_owner_change",
    "DROP TRIGGER IF EXISTS chats_count_delete",
    "DROP TRIGGER IF EXISTS chats_count_insert",
];

const BACKFILL: &str =
    "UPDATE users SET chat_count = (SELECT count(*) FROM chats WHERE chats.user_id = users.id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::ChatCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_UP).await?;
            }
            DbBackend::Sqlite => {
                for statement in SQLITE_UP {
                    db.execute_unprepared(statement).await?;
                }
            }
            other => return Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
        db.execute_unprepared(BACKFILL).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_DOWN).await?;
            }
            DbBackend::Sqlite => {
                for statement in SQLITE_DOWN {
                    db.execute_unprepared(statement).await?;
                }
            }
            other => return Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::ChatCount)
                    .to_owned(),
            )
            .await
    }
}
