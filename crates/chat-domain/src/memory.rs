//! An in-memory implementation of the ports, for fast tests of code built on
//! the domain (ours and other services'). Not for production: nothing persists.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::chat::{Chat, ChatChanges, ExpectedVersion};
use crate::idempotency::{IdempotencyKey, IdempotentOutcome, IdempotentRequest, StoredResponse};
use crate::ids::{ChatId, UserId};
use crate::kmeans::KmeansData;
use crate::page::{ChatCursor, Page, PageRequest, PageStart};
use crate::ports::{
    ChatRepository, ConnectionPool, KmeansDataRepository, PoolStatus, Readiness, RepositoryError,
    SchemaMigrations,
};
use crate::time::Timestamp;

#[derive(Debug, Default)]
struct State {
    users: HashSet<UserId>,
    chats: HashMap<ChatId, Chat>,
    kmeans: Vec<KmeansData>,
    keys: HashMap<(UserId, IdempotencyKey), StoredKey>,
}

/// A keyed create's record: what a replay compares and answers.
#[derive(Debug)]
struct StoredKey {
    fingerprint: String,
    response: StoredResponse,
    created_at: Timestamp,
}

/// Chats and k-means results in a mutex-guarded map, with the same observable
/// behaviour as the database adapters.
#[derive(Debug, Default)]
pub struct InMemoryRepository {
    state: Mutex<State>,
}

impl InMemoryRepository {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `user` has been provisioned (by a first write).
    pub fn has_user(&self, user: UserId) -> bool {
        self.lock().users.contains(&user)
    }

    /// How many idempotency keys are stored, for every user.
    pub fn idempotency_key_count(&self) -> usize {
        self.lock().keys.len()
    }

    /// How many k-means results are stored, for every chat of every user.
    pub fn kmeans_data_count(&self) -> usize {
        self.lock().kmeans.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // (every mutation is a single insert or remove), so the data is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Newest first: `created_at` desc, then `id` desc.
fn list_order(chat: &Chat) -> std::cmp::Reverse<(Timestamp, ChatId)> {
    std::cmp::Reverse((chat.created_at, chat.id))
}

fn owned(state: &mut State, owner: UserId, id: ChatId) -> Option<&mut Chat> {
    state
        .chats
        .get_mut(&id)
        .filter(|chat| chat.user_id == owner)
}

/// The owner's chat, if its version meets `expected`: what every
/// conditional write checks first.
fn owned_at<'a>(
    state: &'a mut State,
    owner: UserId,
    id: ChatId,
    expected: &ExpectedVersion,
) -> Result<&'a mut Chat, RepositoryError> {
    let chat = owned(state, owner, id).ok_or(RepositoryError::NotFound)?;
    if expected.is_met_by(chat.version) {
        Ok(chat)
    } else {
        Err(RepositoryError::VersionMismatch)
    }
}

/// Stores a new chat and provisions its owner (both kinds of insert).
fn store_chat(state: &mut State, chat: &Chat) -> Result<(), RepositoryError> {
    if state.chats.contains_key(&chat.id) {
        return Err(RepositoryError::Conflict(format!(
            "chat {} already exists",
            chat.id
        )));
    }
    state.users.insert(chat.user_id);
    state.chats.insert(chat.id, chat.clone());
    Ok(())
}

#[async_trait]
impl ChatRepository for InMemoryRepository {
    async fn insert(&self, chat: &Chat) -> Result<(), RepositoryError> {
        store_chat(&mut self.lock(), chat)
    }

    async fn insert_idempotent(
        &self,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError> {
        // One lock for the check and both writes: no call is ever seen in
        // flight, and the key exists exactly when its chat does.
        let mut state = self.lock();
        let slot = (chat.user_id, request.key.clone());
        if let Some(stored) = state.keys.get(&slot) {
            return Ok(if stored.fingerprint == request.fingerprint {
                IdempotentOutcome::Replayed(stored.response.clone())
            } else {
                IdempotentOutcome::KeyReused
            });
        }
        store_chat(&mut state, chat)?;
        state.keys.insert(
            slot,
            StoredKey {
                fingerprint: request.fingerprint.clone(),
                response: request.response.clone(),
                created_at: chat.created_at,
            },
        );
        Ok(IdempotentOutcome::Created)
    }

    async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError> {
        let mut state = self.lock();
        let expired: Vec<(UserId, IdempotencyKey)> = state
            .keys
            .iter()
            .filter(|(_, stored)| stored.created_at < created_before)
            .map(|(slot, _)| slot.clone())
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        for slot in &expired {
            state.keys.remove(slot);
        }
        Ok(expired.len() as u64)
    }

    async fn find(&self, owner: UserId, id: ChatId) -> Result<Option<Chat>, RepositoryError> {
        Ok(self
            .lock()
            .chats
            .get(&id)
            .filter(|chat| chat.user_id == owner)
            .cloned())
    }

    async fn list(&self, owner: UserId, page: PageRequest) -> Result<Page<Chat>, RepositoryError> {
        let state = self.lock();
        let mut mine: Vec<&Chat> = state
            .chats
            .values()
            .filter(|chat| chat.user_id == owner)
            .collect();
        mine.sort_by_key(|chat| list_order(chat));
        let total = mine.len() as u64;
        let start = match page.start {
            PageStart::Offset(skip) => usize::try_from(skip.get()).unwrap_or(usize::MAX),
            // Strictly after the cursor's position, whether or not that item still exists.
            PageStart::After(cursor) => {
                mine.partition_point(|chat| list_order(chat) <= list_order_of(cursor))
            }
        };
        let limit = usize::from(page.limit.get());
        let rest = mine.get(start..).unwrap_or_default();
        Ok(Page {
            items: rest
                .iter()
                .take(limit)
                .map(|chat| (*chat).clone())
                .collect(),
            total,
            has_more: rest.len() > limit,
        })
    }

    async fn update(
        &self,
        owner: UserId,
        id: ChatId,
        changes: &ChatChanges,
        expected: &ExpectedVersion,
        now: Timestamp,
    ) -> Result<Chat, RepositoryError> {
        let mut state = self.lock();
        let chat = owned_at(&mut state, owner, id, expected)?;
        *chat = chat.clone().changed(changes.clone(), now);
        Ok(chat.clone())
    }

    async fn delete(
        &self,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> Result<(), RepositoryError> {
        let mut state = self.lock();
        owned_at(&mut state, owner, id, expected)?;
        state.chats.remove(&id);
        state.kmeans.retain(|data| data.chat_id != id);
        Ok(())
    }
}

/// The sort key a cursor stands for.
fn list_order_of(cursor: ChatCursor) -> std::cmp::Reverse<(Timestamp, ChatId)> {
    std::cmp::Reverse((cursor.created_at, cursor.id))
}

#[async_trait]
impl KmeansDataRepository for InMemoryRepository {
    async fn add_kmeans_data(
        &self,
        owner: UserId,
        data: &KmeansData,
    ) -> Result<(), RepositoryError> {
        let mut state = self.lock();
        owned(&mut state, owner, data.chat_id).ok_or(RepositoryError::NotFound)?;
        state.kmeans.push(data.clone());
        Ok(())
    }

    async fn list_kmeans_data(
        &self,
        owner: UserId,
        chat: ChatId,
    ) -> Result<Vec<KmeansData>, RepositoryError> {
        let mut state = self.lock();
        if owned(&mut state, owner, chat).is_none() {
            return Ok(Vec::new());
        }
        let mut results: Vec<KmeansData> = state
            .kmeans
            .iter()
            .filter(|data| data.chat_id == chat)
            .cloned()
            .collect();
        results.sort_by_key(|data| (data.created_at, data.id));
        Ok(results)
    }
}

/// Memory is always there: ready, migrated, and without connections.
#[async_trait]
impl Readiness for InMemoryRepository {
    async fn ping(&self, _within: Duration) -> Result<(), RepositoryError> {
        Ok(())
    }
}

#[async_trait]
impl SchemaMigrations for InMemoryRepository {
    async fn schema_is_current(&self) -> Result<bool, RepositoryError> {
        Ok(true)
    }

    async fn migrate(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}

#[async_trait]
impl ConnectionPool for InMemoryRepository {
    fn status(&self) -> PoolStatus {
        PoolStatus::default()
    }

    fn statements(&self) -> u64 {
        0
    }

    async fn warm_up(&self, _connections: u32) {}

    async fn close(&self) {}
}
