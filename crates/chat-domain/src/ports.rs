//! The ports: what the domain needs from storage. Adapters (SeaORM, in memory)
//! implement them; every chat operation names the owner, so ownership is part of
//! the query and another user's chat is indistinguishable from an absent one.

use std::error::Error as StdError;

use async_trait::async_trait;

use crate::chat::{Chat, ChatChanges, ExpectedVersion};
use crate::ids::{ChatId, UserId};
use crate::kmeans::KmeansData;
use crate::page::{Page, PageRequest};
use crate::time::Timestamp;

/// A boxed cause, kept for the log.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// No such chat for this owner (absent, or another user's).
    #[error("not found")]
    NotFound,
    /// The chat exists but its version did not satisfy the precondition.
    #[error("the chat's version does not match the expected one")]
    VersionMismatch,
    /// A uniqueness or reference constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached in time (refused, pool exhausted,
    /// timed out); retrying later may succeed.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; a bug or corrupt data. The cause is for the log only.
    #[error("unexpected storage error")]
    Other(#[source] BoxError),
}

/// Storage of chats. Implementations must be safe to share between tasks.
#[async_trait]
pub trait ChatRepository: Send + Sync {
    /// Stores a new chat and, in the same transaction, its owner's user row if
    /// this is the owner's first write. Safe under concurrent first writes.
    async fn insert(&self, chat: &Chat) -> Result<(), RepositoryError>;

    /// The owner's chat with this id, if any.
    async fn find(&self, owner: UserId, id: ChatId) -> Result<Option<Chat>, RepositoryError>;

    /// A page of the owner's chats, newest first (`created_at` desc, `id` desc),
    /// with the owner's total.
    async fn list(&self, owner: UserId, page: PageRequest) -> Result<Page<Chat>, RepositoryError>;

    /// Applies `changes` atomically if the chat exists for `owner` and its
    /// version satisfies `expected`: one conditional write, never read-then-write.
    /// The version goes up by one and `updated_at` becomes `now`.
    ///
    /// Fails with [`RepositoryError::NotFound`] or [`RepositoryError::VersionMismatch`].
    async fn update(
        &self,
        owner: UserId,
        id: ChatId,
        changes: &ChatChanges,
        expected: &ExpectedVersion,
        now: Timestamp,
    ) -> Result<Chat, RepositoryError>;

    /// Deletes the chat (and, by cascade, its k-means results) under the same
    /// conditions as [`ChatRepository::update`]. Of concurrent deletes, one wins
    /// and the others get [`RepositoryError::NotFound`].
    async fn delete(
        &self,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> Result<(), RepositoryError>;
}

/// Storage of k-means results; used by the trainer to write them and by the API
/// to read them with their chat.
#[async_trait]
pub trait KmeansDataRepository: Send + Sync {
    /// Stores a result for one of `owner`'s chats; [`RepositoryError::NotFound`]
    /// when the chat is absent or another user's.
    async fn add_kmeans_data(
        &self,
        owner: UserId,
        data: &KmeansData,
    ) -> Result<(), RepositoryError>;

    /// The results of one of `owner`'s chats, oldest first (empty when the chat
    /// is absent or another user's).
    async fn list_kmeans_data(
        &self,
        owner: UserId,
        chat: ChatId,
    ) -> Result<Vec<KmeansData>, RepositoryError>;
}
