//! The operations ports of chat-domain ([`Readiness`], [`SchemaMigrations`],
//! [`ConnectionPool`]) for [`Database`], so the HTTP edge can probe, migrate and
//! gauge storage without naming this crate.

use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConnectionPool, PoolStatus, Readiness, RepositoryError, SchemaMigrations};

use crate::database::Database;

#[async_trait]
impl Readiness for Database {
    async fn ping(&self, within: Duration) -> Result<(), RepositoryError> {
        Database::ping(self, within).await
    }
}

#[async_trait]
impl SchemaMigrations for Database {
    async fn schema_is_current(&self) -> Result<bool, RepositoryError> {
        Database::schema_is_current(self).await
    }

    async fn migrate(&self) -> Result<(), RepositoryError> {
        Database::migrate(self).await
    }
}

#[async_trait]
impl ConnectionPool for Database {
    fn status(&self) -> PoolStatus {
        self.pool_status()
    }

    fn statements(&self) -> u64 {
        self.stats().statements()
    }

    async fn warm_up(&self, connections: u32) {
        Database::warm_up(self, connections).await;
    }

    async fn close(&self) {
        Database::close(self).await;
    }
}
