//! The storage behind the service, as the HTTP edge sees it: the domain's
//! ports as trait objects, never an adapter's concrete type. The binary's
//! wiring (`app.rs`) builds one over PostgreSQL or SQLite; the fast test tier
//! builds one over the in-memory adapter.
//!
//! Trait objects rather than generics: the ports are `async_trait`s, so every
//! call already boxes its future, and the extra indirect call is lost in the
//! noise of a database round trip (docs/architecture.md has the measurement).
//! In exchange, handlers, routes and state are plain, non-generic code.

use std::fmt;
use std::sync::Arc;

use chat_domain::{ChatStore, ConnectionPool, Readiness, SchemaMigrations};

/// The ports one running service uses.
#[derive(Clone)]
pub struct Storage {
    /// Chats and their k-means results: what the use cases run over.
    pub chats: Arc<dyn ChatStore>,
    /// Whether storage answers (readiness probe).
    pub readiness: Arc<dyn Readiness>,
    /// Whether the schema is migrated, and migrating it (start-up).
    pub schema: Arc<dyn SchemaMigrations>,
    /// Pool gauges (metrics), warm-up and close (lifecycle).
    pub pool: Arc<dyn ConnectionPool>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage whose use cases run over `chats` and whose operations ports
    /// are all served by `operations` (a database handle, say).
    pub fn new<O>(chats: Arc<dyn ChatStore>, operations: Arc<O>) -> Self
    where
        O: Readiness + SchemaMigrations + ConnectionPool + 'static,
    {
        Self {
            chats,
            readiness: operations.clone(),
            schema: operations.clone(),
            pool: operations,
        }
    }

    /// Storage served entirely by one adapter (the in-memory one, say).
    pub fn single<A>(adapter: Arc<A>) -> Self
    where
        A: ChatStore + Readiness + SchemaMigrations + ConnectionPool + 'static,
    {
        Self::new(adapter.clone(), adapter)
    }
}
