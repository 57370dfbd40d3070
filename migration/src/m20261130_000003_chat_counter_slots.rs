//! Each user's number of chats moves from the single `users.chat_count` row to
//! `user_chat_counts(user_id, slot, n)`: up to 64 counter rows per user, whose
//! sum is the user's number of chats.
//!
//! Why: the old trigger updated the user's one row on every insert and delete
//! and held its lock until commit, so one user's writes ran one at a time. Now
//! a PostgreSQL writer adds its ±1 to the slot `pg_backend_pid() % 64`: two
//! connections writing for the same user touch different rows (unless their
//! process ids collide modulo 64), while one connection always uses the same
//! slot, so a transaction holds at most one counter row per user. The sum over
//! a user's slots is read in the same statement as the page, so it is exact in
//! the page's snapshot and costs at most 64 index entries, whatever the number
//! of chats.
//!
//! The invariant is `sum(n) = count(*)` of the user's chats, maintained by the
//! triggers whoever writes `chats`; there is deliberately no foreign key to
//! `users` (a cascading user delete leaves slots summing to 0, which is right,
//! and the trigger never needs to lock the `users` row).
//!
//! SQLite serialises writers anyway: its triggers always use slot 0.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::{UserChatCounts, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Same function name as migration 000002, so its triggers stay as they are
/// and only the body changes.
const POSTGRES_SLOTS_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION chats_maintain_chat_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_slot smallint := pg_backend_pid() % 64;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO user_chat_counts AS c (user_id, slot, n) VALUES (OLD.user_id, my_slot, -1)
            ON CONFLICT (user_id, slot) DO UPDATE SET n = c.n - 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO user_chat_counts AS c (user_id, slot, n) VALUES (NEW.user_id, my_slot, 1)
            ON CONFLICT (user_id, slot) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;
"#;

/// Migration 000002's body, for the down path.
const POSTGRES_ROW_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION chats_maintain_chat_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
"#;

/// Writers wait while the counter changes shape (readers do not), so no write
/// is counted twice or missed between the backfill and the new triggers.
const POSTGRES_LOCK: &str = "LOCK TABLE chats IN SHARE ROW EXCLUSIVE MODE";

const SQLITE_TRIGGER_NAMES: [&str; 3] = [
    "chats_count_owner_change",
    "chats_count_delete",
    "chats_count_insert",
];

const SQLITE_SLOT_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER chats_count_insert AFTER INSERT ON chats BEGIN \
         INSERT INTO user_chat_counts (user_id, slot, n) VALUES (NEW.user_id, 0, 1) \
         ON CONFLICT (user_id, slot) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER chats_count_delete AFTER DELETE ON chats BEGIN \
         INSERT INTO user_chat_counts (user_id, slot, n) VALUES (OLD.user_id, 0, -1) \
         ON CONFLICT (user_id, slot) DO UPDATE SET n = n - 1; END",
    "CREATE TRIGGER chats_count_owner_change AFTER UPDATE OF user_id ON chats \
         WHEN OLD.user_id IS NOT NEW.user_id BEGIN \
         INSERT INTO user_chat_counts (user_id, slot, n) VALUES (OLD.user_id, 0, -1) \
         ON CONFLICT (user_id, slot) DO UPDATE SET n = n - 1; \
         INSERT INTO user_chat_counts (user_id, slot, n) VALUES (NEW.user_id, 0, 1) \
         ON CONFLICT (user_id, slot) DO UPDATE SET n = n + 1; END",
];

/// Migration 000002's triggers, for the down path.
const SQLITE_ROW_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER chats_count_insert AFTER INSERT ON chats BEGIN \
         UPDATE users SET chat_count = chat_count + 1 WHERE id = NEW.user_id; END",
    "CREATE TRIGGER chats_count_delete AFTER DELETE ON chats BEGIN \
         UPDATE users SET chat_count = chat_count - 1 WHERE id = OLD.user_id; END",
    "CREATE TRIGGER chats_count_owner_change AFTER UPDATE OF user_id ON chats \
         WHEN OLD.user_id IS NOT NEW.user_id BEGIN \
         UPDATE users SET chat_count = chat_count - 1 WHERE id = OLD.user_id; \
         UPDATE users SET chat_count = chat_count + 1 WHERE id = NEW.user_id; END",
];

/// The backfills count the chats themselves rather than trusting the counter
/// they replace: a drifted counter (say, rows bulk-loaded with triggers off)
/// comes out right.
const BACKFILL_SLOTS: &str = "INSERT INTO user_chat_counts (user_id, slot, n) \
     SELECT user_id, 0, count(*) FROM chats GROUP BY user_id";

const BACKFILL_ROW: &str =
    "UPDATE users SET chat_count = (SELECT count(*) FROM chats WHERE chats.user_id = users.id)";

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

fn sqlite_drop_triggers() -> Vec<String> {
    SQLITE_TRIGGER_NAMES
        .iter()
        .map(|name| format!("DROP TRIGGER IF EXISTS {name}"))
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// All or nothing on SQLite too (its DDL is transactional).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if backend == DbBackend::Postgres {
            run(manager, &[POSTGRES_LOCK]).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(UserChatCounts::Table)
                    .col(ColumnDef::new(UserChatCounts::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(UserChatCounts::Slot)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UserChatCounts::N).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(UserChatCounts::UserId)
                            .col(UserChatCounts::Slot),
                    )
                    .to_owned(),
            )
            .await?;
        match backend {
            DbBackend::Postgres => run(manager, &[POSTGRES_SLOTS_FUNCTION]).await?,
            DbBackend::Sqlite => {
                let drops = sqlite_drop_triggers();
                let drops: Vec<&str> = drops.iter().map(String::as_str).collect();
                run(manager, &drops).await?;
                run(manager, &SQLITE_SLOT_TRIGGERS).await?;
            }
            other => return Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
        run(manager, &[BACKFILL_SLOTS]).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::ChatCount)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if backend == DbBackend::Postgres {
            run(manager, &[POSTGRES_LOCK]).await?;
        }
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
        match backend {
            DbBackend::Postgres => run(manager, &[POSTGRES_ROW_FUNCTION]).await?,
            DbBackend::Sqlite => {
                let drops = sqlite_drop_triggers();
                let drops: Vec<&str> = drops.iter().map(String::as_str).collect();
                run(manager, &drops).await?;
                run(manager, &SQLITE_ROW_TRIGGERS).await?;
            }
            other => return Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
        run(manager, &[BACKFILL_ROW]).await?;
        manager
            .drop_table(Table::drop().table(UserChatCounts::Table).to_owned())
            .await
    }
}
