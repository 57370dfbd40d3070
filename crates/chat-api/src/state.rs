//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chat_domain::{ChatService, ChatStore};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// The use cases over whichever storage the service was built with.
pub type Chats = ChatService<Arc<dyn ChatStore>>;

/// The service's shared state, built once at start.
pub struct AppState {
    chats: Chats,
    /// The storage ports (readiness, pool gauges, schema).
    pub storage: Storage,
    /// Request and pool metrics.
    pub metrics: Metrics,
    /// False until migrations have been applied (or are not ours to apply).
    schema_ready: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("storage", &self.storage)
            .field("schema_ready", &self.schema_is_ready())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over this storage; `schema_ready` says whether `/chat` may use it yet.
    pub fn new(storage: Storage, metrics: Metrics, schema_ready: bool) -> Self {
        Self {
            chats: ChatService::new(storage.chats.clone()),
            storage,
            metrics,
            schema_ready: AtomicBool::new(schema_ready),
        }
    }

    /// The use cases, or 503 while the schema is not migrated yet (the
    /// database was away at start; a background task keeps trying).
    pub fn chats(&self) -> Result<&Chats, ApiError> {
        if self.schema_is_ready() {
            Ok(&self.chats)
        } else {
            Err(ApiError::Unavailable(Some(
                "the database schema is not migrated yet".into(),
            )))
        }
    }

    /// Whether migrations have been applied.
    pub fn schema_is_ready(&self) -> bool {
        self.schema_ready.load(Ordering::Acquire)
    }

    /// Marks the schema as migrated.
    pub fn mark_schema_ready(&self) {
        self.schema_ready.store(true, Ordering::Release);
    }
}
