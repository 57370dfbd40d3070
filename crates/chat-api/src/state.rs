//! What every handler shares.

use std::sync::atomic::{AtomicBool, Ordering};

use chat_domain::ChatService;
use chat_infra::{Database, SeaOrmRepository};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The service's shared state, built once at start.
#[derive(Debug)]
pub struct AppState {
    chats: ChatService<SeaOrmRepository>,
    /// The pool (readiness, metrics, shutdown).
    pub database: Database,
    /// Request and pool metrics.
    pub metrics: Metrics,
    /// False until migrations have been applied (or are not ours to apply).
    schema_ready: AtomicBool,
}

impl AppState {
    /// The state over this pool; `schema_ready` says whether `/chat` may use it yet.
    pub fn new(database: Database, metrics: Metrics, schema_ready: bool) -> Self {
        Self {
            chats: ChatService::new(SeaOrmRepository::new(database.clone())),
            database,
            metrics,
            schema_ready: AtomicBool::new(schema_ready),
        }
    }

    /// The use cases, or 503 while the schema is not migrated yet (the
    /// database was away at start; a background task keeps trying).
    pub fn chats(&self) -> Result<&ChatService<SeaOrmRepository>, ApiError> {
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
