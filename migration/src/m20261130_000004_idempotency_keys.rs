//! `idempotency_keys`: what a `POST /chat/` with an `Idempotency-Key` stored,
//! so that a retry with the same key answers the same response instead of
//! creating a second chat.
//!
//! One row per (user, key), written in the same statement (PostgreSQL) or the
//! same transaction (SQLite) as its chat, so a key exists exactly when its chat
//! was created. The row holds the response itself, not a reference to the chat:
//! a replay answers what the first request answered even after the chat changed
//! or was deleted, so there is deliberately no foreign key to `chats` (nor to
//! `users`, so that writing a key never locks the user's row). Rows older than
//! the configured time to live are purged in small batches; the index on
//! `created_at` serves the purge.

use sea_orm_migration::prelude::*;

use crate::IdempotencyKeys;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATED_AT_INDEX: &str = "ix_idempotency_keys_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::IdempotencyKey)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::ChatId).uuid().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::ResponseStatus)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::ResponseHeaders)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::ResponseBody)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::UserId)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CREATED_AT_INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
