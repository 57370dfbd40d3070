//! The ports: what the domain needs from storage. Adapters (SeaORM, in memory)
//! implement them; every chat operation names the owner, so ownership is part of
//! the query and another user's chat is indistinguishable from an absent one.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::chat::{Chat, ChatChanges, ExpectedVersion};
use crate::idempotency::{IdempotentOutcome, IdempotentRequest};
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

    /// [`ChatRepository::insert`] under an idempotency key of the chat's owner.
    ///
    /// When the owner has not used `request.key`, the chat, the owner's row
    /// and the key (with its fingerprint and response) are stored atomically:
    /// the key exists exactly when its chat does ([`IdempotentOutcome::Created`]).
    /// When the key was used before, nothing is written: the stored response
    /// if the fingerprint is the same ([`IdempotentOutcome::Replayed`]), else
    /// [`IdempotentOutcome::KeyReused`]. While another call with the same key
    /// has not finished, [`IdempotentOutcome::InFlight`], without waiting for it.
    async fn insert_idempotent(
        &self,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError>;

    /// Deletes at most `limit` idempotency keys stored before `created_before`
    /// and answers how many went. Never waits for a writer: call it again
    /// while it deletes `limit`.
    async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError>;

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

/// Both storage ports at once: what the HTTP service's use cases run over.
/// Every type implementing both ports is a `ChatStore`, so an adapter can be
/// handed around as one `Arc<dyn ChatStore>`.
pub trait ChatStore: ChatRepository + KmeansDataRepository {}

impl<T: ChatRepository + KmeansDataRepository + ?Sized> ChatStore for T {}

// A shared adapter is still an adapter: `Arc<dyn ChatStore>` (or `Arc<A>`)
// implements the ports by delegation, so `ChatService<Arc<dyn ChatStore>>` works.
#[async_trait]
impl<T: ChatRepository + ?Sized> ChatRepository for Arc<T> {
    async fn insert(&self, chat: &Chat) -> Result<(), RepositoryError> {
        (**self).insert(chat).await
    }

    async fn insert_idempotent(
        &self,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError> {
        (**self).insert_idempotent(chat, request).await
    }

    async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError> {
        (**self).purge_idempotency_keys(created_before, limit).await
    }

    async fn find(&self, owner: UserId, id: ChatId) -> Result<Option<Chat>, RepositoryError> {
        (**self).find(owner, id).await
    }

    async fn list(&self, owner: UserId, page: PageRequest) -> Result<Page<Chat>, RepositoryError> {
        (**self).list(owner, page).await
    }

    async fn update(
        &self,
        owner: UserId,
        id: ChatId,
        changes: &ChatChanges,
        expected: &ExpectedVersion,
        now: Timestamp,
    ) -> Result<Chat, RepositoryError> {
        (**self).update(owner, id, changes, expected, now).await
    }

    async fn delete(
        &self,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> Result<(), RepositoryError> {
        (**self).delete(owner, id, expected).await
    }
}

#[async_trait]
impl<T: KmeansDataRepository + ?Sized> KmeansDataRepository for Arc<T> {
    async fn add_kmeans_data(
        &self,
        owner: UserId,
        data: &KmeansData,
    ) -> Result<(), RepositoryError> {
        (**self).add_kmeans_data(owner, data).await
    }

    async fn list_kmeans_data(
        &self,
        owner: UserId,
        chat: ChatId,
    ) -> Result<Vec<KmeansData>, RepositoryError> {
        (**self).list_kmeans_data(owner, chat).await
    }
}

// --- What an operations edge needs from storage -------------------------------
//
// Readiness probes, metrics and start-up need a little more than the use
// cases: whether storage answers, how busy its pool is, and whether its schema
// is migrated. Small ports, so a service can run over any adapter (the
// in-memory one included) without naming the adapter's crate.

/// Whether storage answers: what a readiness probe asks.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when storage answers a trivial request within `within`;
    /// [`RepositoryError::Unavailable`] otherwise.
    async fn ping(&self, within: Duration) -> Result<(), RepositoryError>;
}

/// The storage schema: whether it is migrated, and migrating it.
#[async_trait]
pub trait SchemaMigrations: Send + Sync {
    /// Whether every migration this build knows has been applied (read-only).
    async fn schema_is_current(&self) -> Result<bool, RepositoryError>;

    /// Applies pending migrations; safe when several processes start together.
    async fn migrate(&self) -> Result<(), RepositoryError>;
}

/// A connection pool's occupancy at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

impl PoolStatus {
    /// Connections in use now.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// The connection pool behind the ports, as metrics and the process lifecycle
/// see it. Adapters without connections answer with zeros and do nothing.
#[async_trait]
pub trait ConnectionPool: Send + Sync {
    /// Occupancy now.
    fn status(&self) -> PoolStatus;

    /// Statements executed so far (a counter that only goes up).
    fn statements(&self) -> u64;

    /// Opens up to `connections` connections ahead of traffic; failures are
    /// ignored (the pool opens connections on demand anyway).
    async fn warm_up(&self, connections: u32);

    /// Closes every connection; later calls fail as unavailable.
    async fn close(&self);
}
