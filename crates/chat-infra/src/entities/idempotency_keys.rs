//! `idempotency_keys`: the stored responses of creates made under an
//! `Idempotency-Key`, one row per (user, key), written with the chat.
//!
//! The row holds the response itself (status, headers, body), not a reference
//! to the chat, so a replay answers the same even after the chat changed or
//! was deleted; hence no foreign key to `chats`. Rows older than the
//! configured time to live are purged.

use sea_orm::entity::prelude::*;

/// A row of `idempotency_keys`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// The user the key belongs to: keys are scoped per user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The client's key: 1 to 255 visible ASCII characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    /// SHA-256 (hex) of the request body's canonical JSON.
    pub fingerprint: String,
    /// The chat the first request created (it may have been deleted since).
    pub chat_id: Uuid,
    /// The stored response's status.
    pub response_status: i16,
    /// The stored response's headers: a JSON array of `[name, value]` pairs.
    pub response_headers: String,
    /// The stored response's body, as sent.
    pub response_body: String,
    /// When the key was stored; the purge deletes by it.
    pub created_at: DateTimeUtc,
}

/// `idempotency_keys` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
