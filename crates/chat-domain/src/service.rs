//! The use cases, generic over the ports.

use crate::chat::{Chat, ChatChanges, ChatPatch, ChatReplacement, ExpectedVersion, NewChat};
use crate::error::DomainError;
use crate::idempotency::{
    IdempotencyKey, IdempotentOutcome, IdempotentRequest, KeyedCreate, StoredResponse,
};
use crate::ids::{ChatId, UserId};
use crate::kmeans::{KmeansData, NewKmeansData};
use crate::page::{Page, PageRequest};
use crate::ports::{ChatRepository, KmeansDataRepository};
use crate::time::Timestamp;

/// What a user can do with their chats. Every method takes the acting user;
/// a chat of another user is reported as [`DomainError::NotFound`].
#[derive(Debug, Clone)]
pub struct ChatService<R> {
    repository: R,
}

impl<R> ChatService<R> {
    /// The use cases over this storage.
    pub fn new(repository: R) -> Self {
        Self { repository }
    }

    /// The storage behind the use cases.
    pub fn repository(&self) -> &R {
        &self.repository
    }
}

impl<R: ChatRepository> ChatService<R> {
    /// Creates a chat owned by `owner` (provisioning the owner on first write).
    pub async fn create(&self, owner: UserId, command: NewChat) -> Result<Chat, DomainError> {
        let chat = Chat::create(owner, command, Timestamp::now());
        self.repository.insert(&chat).await?;
        Ok(chat)
    }

    /// Creates a chat under an idempotency key of `owner`. `respond` renders
    /// the response for the new chat before anything is written, because the
    /// response is stored atomically with the chat. Answers what
    /// [`ChatRepository::insert_idempotent`] decided.
    pub async fn create_idempotent(
        &self,
        owner: UserId,
        command: NewChat,
        key: IdempotencyKey,
        fingerprint: String,
        respond: impl FnOnce(&Chat) -> StoredResponse + Send,
    ) -> Result<KeyedCreate, DomainError> {
        let chat = Chat::create(owner, command, Timestamp::now());
        let request = IdempotentRequest {
            key,
            fingerprint,
            response: respond(&chat),
        };
        Ok(
            match self.repository.insert_idempotent(&chat, &request).await? {
                IdempotentOutcome::Created => KeyedCreate::Created(request.response),
                IdempotentOutcome::Replayed(stored) => KeyedCreate::Replayed(stored),
                IdempotentOutcome::KeyReused => KeyedCreate::KeyReused,
                IdempotentOutcome::InFlight => KeyedCreate::InFlight,
            },
        )
    }

    /// Deletes idempotency keys stored before `created_before`, in batches of
    /// `batch`, until none is left; answers how many went.
    pub async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
        batch: u32,
    ) -> Result<u64, DomainError> {
        let batch = batch.max(1);
        let mut purged = 0;
        loop {
            let deleted = self
                .repository
                .purge_idempotency_keys(created_before, batch)
                .await?;
            purged += deleted;
            if deleted < u64::from(batch) {
                return Ok(purged);
            }
        }
    }

    /// One of `owner`'s chats.
    pub async fn get(&self, owner: UserId, id: ChatId) -> Result<Chat, DomainError> {
        self.repository
            .find(owner, id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// A page of `owner`'s chats, newest first, with their total.
    pub async fn list(&self, owner: UserId, page: PageRequest) -> Result<Page<Chat>, DomainError> {
        Ok(self.repository.list(owner, page).await?)
    }

    /// Replaces a chat's fields (a missing description becomes none).
    pub async fn replace(
        &self,
        owner: UserId,
        id: ChatId,
        replacement: ChatReplacement,
        expected: &ExpectedVersion,
    ) -> Result<Chat, DomainError> {
        let changes = ChatChanges::from(replacement);
        Ok(self
            .repository
            .update(owner, id, &changes, expected, Timestamp::now())
            .await?)
    }

    /// Changes some of a chat's fields. The empty patch changes nothing (not
    /// even `updated_at`) and returns the chat as it is, after the same
    /// existence and precondition checks as any other write.
    pub async fn patch(
        &self,
        owner: UserId,
        id: ChatId,
        patch: ChatPatch,
        expected: &ExpectedVersion,
    ) -> Result<Chat, DomainError> {
        if patch.is_noop() {
            let chat = self.get(owner, id).await?;
            return if expected.is_met_by(chat.version) {
                Ok(chat)
            } else {
                Err(DomainError::PreconditionFailed)
            };
        }
        let changes = ChatChanges::from(patch);
        Ok(self
            .repository
            .update(owner, id, &changes, expected, Timestamp::now())
            .await?)
    }

    /// Deletes a chat and its k-means results.
    pub async fn delete(
        &self,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> Result<(), DomainError> {
        Ok(self.repository.delete(owner, id, expected).await?)
    }
}

impl<R: ChatRepository + KmeansDataRepository> ChatService<R> {
    /// One of `owner`'s chats with its k-means results, oldest first.
    pub async fn get_with_kmeans_data(
        &self,
        owner: UserId,
        id: ChatId,
    ) -> Result<(Chat, Vec<KmeansData>), DomainError> {
        let chat = self.get(owner, id).await?;
        let results = self.repository.list_kmeans_data(owner, id).await?;
        Ok((chat, results))
    }

    /// Stores a k-means result for one of `owner`'s chats.
    pub async fn add_kmeans_data(
        &self,
        owner: UserId,
        command: NewKmeansData,
    ) -> Result<KmeansData, DomainError> {
        let data = command.into_kmeans_data(Timestamp::now());
        self.repository.add_kmeans_data(owner, &data).await?;
        Ok(data)
    }
}
