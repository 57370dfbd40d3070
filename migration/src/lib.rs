//! Schema migrations for chat-api, for PostgreSQL and SQLite alike.
//!
//! Table names are part of the contract (other services read and write them):
//! `users`, `chats`, `kmeans_data`. `user_chat_counts` is internal: triggers on
//! `chats` keep it, whoever writes. `idempotency_keys` is internal too: the
//! responses of keyed creates, for safe retries.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_tables;
mod m20261124_000002_chat_counter;
mod m20261130_000003_chat_counter_slots;
mod m20261130_000004_idempotency_keys;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tables::Migration),
            Box::new(m20261124_000002_chat_counter::Migration),
            Box::new(m20261130_000003_chat_counter_slots::Migration),
            Box::new(m20261130_000004_idempotency_keys::Migration),
        ]
    }
}

/// Column and table names shared by the migrations.
#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    CreatedAt,
    ChatCount,
}

/// A user's number of chats, spread over counter slots (migration 000003).
#[derive(DeriveIden)]
pub(crate) enum UserChatCounts {
    Table,
    UserId,
    Slot,
    N,
}

/// Stored responses of keyed creates (migration 000004).
#[derive(DeriveIden)]
pub(crate) enum IdempotencyKeys {
    Table,
    UserId,
    IdempotencyKey,
    Fingerprint,
    ChatId,
    ResponseStatus,
    ResponseHeaders,
    ResponseBody,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Chats {
    Table,
    Id,
    UserId,
    Title,
    Description,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden)]
pub(crate) enum KmeansData {
    Table,
    Id,
    ChatId,
    K,
    Centroids,
    CreatedAt,
}
