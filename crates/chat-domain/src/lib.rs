//! The core of chat-api: what a chat and a k-means result *are*, what may be
//! done with them, and the ports through which they are stored.
//!
//! This crate knows nothing of HTTP, SQL or an async runtime, so other services
//! (the k-means trainer, for one) can depend on it alone:
//!
//! - validated values that cannot hold invalid data: [`ChatId`], [`UserId`],
//!   [`Title`], [`Description`], [`Centroids`], [`Timestamp`], [`Version`];
//! - entities and commands: [`Chat`], [`KmeansData`], [`NewChat`],
//!   [`ChatReplacement`], [`ChatPatch`];
//! - safe retries: [`IdempotencyKey`], [`IdempotentRequest`], [`StoredResponse`];
//! - paging: [`PageRequest`], [`Page`], [`ChatCursor`];
//! - ports: [`ChatRepository`], [`KmeansDataRepository`] (both: [`ChatStore`]), and
//!   for an operations edge [`Readiness`], [`SchemaMigrations`], [`ConnectionPool`];
//! - use cases: [`ChatService`];
//! - an in-memory implementation of the ports for fast tests: [`memory::InMemoryRepository`].
//!
//! Smart constructors validate once; past them, nothing re-checks.

mod chat;
mod error;
mod idempotency;
mod ids;
mod kmeans;
pub mod memory;
mod page;
mod ports;
mod service;
mod time;

pub use chat::{
    Chat, ChatChanges, ChatPatch, ChatReplacement, Description, DescriptionError, DescriptionPatch,
    ExpectedVersion, NewChat, Title, TitleError, Version,
};
pub use error::DomainError;
pub use idempotency::{
    IdempotencyKey, IdempotencyKeyError, IdempotentOutcome, IdempotentRequest, KeyedCreate,
    StoredResponse,
};
pub use ids::{ChatId, IdError, KmeansDataId, UserId};
pub use kmeans::{Centroids, CentroidsError, KmeansData, NewKmeansData};
pub use page::{ChatCursor, Limit, LimitError, Page, PageRequest, PageStart, Skip, SkipError};
pub use ports::{
    BoxError, ChatRepository, ChatStore, ConnectionPool, KmeansDataRepository, PoolStatus,
    Readiness, RepositoryError, SchemaMigrations,
};
pub use service::ChatService;
pub use time::Timestamp;
