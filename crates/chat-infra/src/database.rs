//! The connection pool: building it from configuration, migrating, probing,
//! and counting what it executes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::{PoolStatus, RepositoryError};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    Statement, TransactionTrait,
};

use crate::error::{Retry, TimedOut, repository_error, retry};
use crate::session::{self, PgPool, Probe, Session};

/// How to reach the database and how big the pool is.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`. May hold a password: never log it
    /// (see [`redact_url`]).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Connections opened ahead of traffic (PostgreSQL: at start-up, see
    /// [`Database::warm_up`]; SQLite: kept open while idle).
    pub min_connections: u32,
    /// How long a request may wait for a connection (including establishing
    /// one) before it is answered "unavailable".
    pub acquire_timeout: Duration,
    /// Upper bound on one repository call, so a database that accepts
    /// connections but never answers cannot hang a request.
    pub query_timeout: Duration,
    /// Idle connections are checked with a ping before reuse after this long,
    /// so a restarted database costs no failed request.
    pub ping_idle_after: Duration,
    /// What sits between the service and PostgreSQL (`DATABASE_POOLER`).
    pub pooler: Pooler,
    /// No request uses a connection opened longer ago than this, so a
    /// failover, a DNS change or a pooler's rebalancing reaches every
    /// connection without a restart.
    pub max_lifetime: Duration,
    /// No request uses a connection that sat idle longer than this; idle ones
    /// are closed in the background.
    pub idle_timeout: Duration,
}

/// What sits between the service and PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// PostgreSQL itself, or a session-mode pooler: statements are prepared
    /// once per connection and the statement timeout is sent at connect.
    #[default]
    None,
    /// A transaction-mode pooler (PgBouncer `pool_mode = transaction`, pgcat,
    /// Supavisor): every statement travels as one simple-protocol query with
    /// its parameters written in, no named prepared statement, no session
    /// state, and no startup parameter but those a pooler tracks (the
    /// statement timeout then comes from the role).
    Transaction,
}

impl Pooler {
    /// `none` or `transaction` (the value of `DATABASE_POOLER`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "transaction" => Some(Self::Transaction),
            _ => None,
        }
    }
}

/// The URL is shown redacted: configurations get logged.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("ping_idle_after", &self.ping_idle_after)
            .field("pooler", &self.pooler)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl DatabaseConfig {
    /// Defaults sized for a small service; see `docs/performance.md` for the sweep.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_millis(1500),
            query_timeout: Duration::from_secs(4),
            ping_idle_after: Duration::from_secs(30),
            pooler: Pooler::None,
            max_lifetime: Duration::from_secs(1800),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Whether a repository call only reads (and may run again on a fresh
/// connection when its connection is found dead) or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only.
    Read,
    /// Writes.
    Write,
}

/// The URL with any password replaced by `***`, for logs and messages.
///
/// Forgiving on purpose: people paste passwords with an unencoded `/` or `@`,
/// so the credentials end at the last `@` before the query string, not at the
/// first `/`. What does not look like a URL at all (a libpq `key=value` string,
/// say) could hold a password anywhere and is not echoed.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            "(not a URL; not shown)".to_owned()
        };
    };
    let before_query = rest.find('?').unwrap_or(rest.len());
    match rest[..before_query].rfind('@') {
        Some(at) => {
            let (credentials, host_and_path) = (&rest[..at], &rest[at + 1..]);
            let user = credentials.split([':', '/']).next().unwrap_or_default();
            let hidden = if credentials.len() > user.len() {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host_and_path}")
        }
        None => url.to_owned(),
    }
}

/// What repository calls executed: the statement budget per request is
/// asserted in tests with this, and `/metrics` exports it.
#[derive(Debug, Default)]
pub struct QueryStats {
    pub(crate) statements: AtomicU64,
}

impl QueryStats {
    /// Statements executed by repository calls, on either backend (inside
    /// transactions or not; `BEGIN`/`COMMIT` excluded; migrations and health
    /// probes are not repository calls).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

/// A handle on the pools; cheap to clone.
///
/// On PostgreSQL, repository calls use a pool of our own (see `session.rs`);
/// SeaORM's pool (two connections) serves migrations and ad-hoc statements. On
/// SQLite, SeaORM's pool serves everything.
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    postgres: Option<PgPool>,
    /// The readiness probe's own connection (PostgreSQL).
    probe: Option<Arc<Probe>>,
    stats: Arc<QueryStats>,
    query_timeout: Duration,
    max_connections: u32,
    pooler: Pooler,
}

/// Why the pool could not be built (a malformed URL; not an unreachable server,
/// which only shows on first use). The driver's own message is dropped: it
/// repeats the URL, password included.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid DATABASE_URL {url}: expected postgres://user[:password]@host[:port]/database \
     or sqlite://path[?mode=rwc]"
)]
pub struct ConnectError {
    url: String,
}

impl Database {
    /// Builds the pool without connecting: the service starts, and answers
    /// 503, while the database is down, and recovers by itself when it returns.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, ConnectError> {
        let invalid = || ConnectError {
            url: redact_url(&config.url),
        };
        let postgres = if config.url.starts_with("postgres") {
            Some(session::pg_pool(config).ok_or_else(invalid)?)
        } else {
            None
        };
        // With our PostgreSQL pool in front, SeaORM's needs only a couple of
        // connections (migrations, ad-hoc statements).
        let seaorm_connections = if postgres.is_some() {
            2
        } else {
            config.max_connections
        };
        let pooler = config.pooler;
        let mut options = ConnectOptions::new(config.url.clone());
        options
            .max_connections(seaorm_connections)
            .min_connections(config.min_connections.min(seaorm_connections))
            .acquire_timeout(config.acquire_timeout)
            .connect_timeout(config.acquire_timeout)
            .idle_timeout(config.idle_timeout)
            .max_lifetime(config.max_lifetime)
            // A ping on every checkout doubles the round trips; ping only
            // connections that sat idle long enough to have gone stale.
            .test_before_acquire(false)
            .test_before_acquire_if_idle_for(config.ping_idle_after)
            // Per-statement logging on the hot path costs more than the query.
            .sqlx_logging(false)
            .connect_lazy(true)
            .map_sqlx_postgres_opts(move |options| {
                if pooler == Pooler::Transaction {
                    // Named statements are never reused on this pool then
                    // (and each use is wrapped, see `Database::admin`).
                    options.statement_cache_capacity(0)
                } else {
                    options
                }
            })
            .map_sqlx_sqlite_opts(|options| {
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        let connection = sea_orm::Database::connect(options)
            .await
            .map_err(|_| invalid())?;
        let probe = postgres.as_ref().map(|pool| Arc::new(Probe::new(pool)));
        Ok(Self {
            connection,
            postgres,
            probe,
            stats: Arc::new(QueryStats::default()),
            query_timeout: config.query_timeout,
            max_connections: config.max_connections,
            pooler,
        })
    }

    /// SeaORM's connection pool, for migrations and ad-hoc statements (the
    /// repository goes through sessions).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// PostgreSQL or SQLite.
    pub fn backend(&self) -> DatabaseBackend {
        self.connection.get_database_backend()
    }

    /// What the pool executed so far.
    pub fn stats(&self) -> &QueryStats {
        &self.stats
    }

    /// Open and idle connections.
    pub fn pool_status(&self) -> PoolStatus {
        if let Some(pool) = &self.postgres {
            let status = pool.status();
            return PoolStatus {
                size: u32::try_from(status.size).unwrap_or(u32::MAX),
                idle: u32::try_from(status.available).unwrap_or(u32::MAX),
                max: self.max_connections,
            };
        }
        let (size, idle) = match self.backend() {
            DatabaseBackend::Postgres => {
                let pool = self.connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseBackend::Sqlite => {
                let pool = self.connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        PoolStatus {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.max_connections,
        }
    }

    /// Whether the database answers a trivial query within `within`. On
    /// PostgreSQL on a connection of its own, never the request pool's.
    pub async fn ping(&self, within: Duration) -> Result<(), RepositoryError> {
        let probe = async {
            match &self.probe {
                Some(probe) => probe.ping().await,
                None => self.session().await?.ping().await,
            }
        };
        match tokio::time::timeout(within, probe).await {
            Ok(result) => result,
            Err(_) => Err(RepositoryError::Unavailable(Box::new(TimedOut(within)))),
        }
    }

    /// Opens up to `connections` connections ahead of traffic, so the first
    /// requests do not pay for connection set-up. Failures are ignored: the
    /// pool opens connections on demand anyway.
    pub async fn warm_up(&self, connections: u32) {
        let Some(pool) = &self.postgres else { return };
        let checkouts = (0..connections).map(|_| session::checkout(pool));
        let opened = futures_util::future::join_all(checkouts).await;
        let ready = opened.iter().filter(|result| result.is_ok()).count();
        tracing::debug!(ready, "database pool warmed up");
    }

    /// Applies pending migrations. On PostgreSQL they run in one transaction
    /// under an advisory lock, so replicas starting together migrate once.
    pub async fn migrate(&self) -> Result<(), RepositoryError> {
        match self.backend() {
            DatabaseBackend::Postgres => {
                let transaction = self.admin().await?;
                transaction
                    .execute_unprepared("SELECT pg_advisory_xact_lock(7215301150642)")
                    .await
                    .map_err(repository_error)?;
                Migrator::up(&transaction, None)
                    .await
                    .map_err(repository_error)?;
                self.admin_commit(transaction).await
            }
            _ => Migrator::up(&self.connection, None)
                .await
                .map_err(repository_error),
        }
    }

    /// Whether every migration this build knows has been applied. Read-only
    /// (unlike asking SeaORM, which creates its bookkeeping table), for a
    /// service told not to migrate: it waits for `chat-api migrate` instead.
    pub async fn schema_is_current(&self) -> Result<bool, RepositoryError> {
        let query = Statement::from_string(self.backend(), "SELECT version FROM seaql_migrations");
        let applied = if self.pooler == Pooler::Transaction {
            let transaction = self.admin().await?;
            match transaction.query_all_raw(query).await {
                Ok(rows) => self.admin_commit(transaction).await.map(|()| Ok(rows))?,
                Err(error) => Err(error),
            }
        } else {
            self.connection.query_all_raw(query).await
        };
        let applied: Vec<String> = match applied {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| row.try_get_by_index::<String>(0).ok())
                .collect(),
            Err(error) => {
                return match repository_error(error) {
                    unavailable @ RepositoryError::Unavailable(_) => Err(unavailable),
                    // No bookkeeping table yet: nothing was ever migrated.
                    _ => Ok(false),
                };
            }
        };
        Ok(Migrator::migrations()
            .iter()
            .all(|migration| applied.iter().any(|name| name == migration.name())))
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        if let Some(pool) = &self.postgres {
            pool.close();
        }
        if let Err(error) = self.connection.close_by_ref().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }

    /// A connection for one repository call.
    pub(crate) async fn session(&self) -> Result<Session, RepositoryError> {
        match &self.postgres {
            Some(pool) => Ok(Session::Postgres {
                conn: tokio::sync::Mutex::new(session::checkout(pool).await?),
                stats: Arc::clone(&self.stats),
            }),
            None => Ok(Session::Pool {
                connection: self.connection.clone(),
                stats: Arc::clone(&self.stats),
            }),
        }
    }

    /// Begins a SeaORM transaction on the admin pool (migrations, the schema
    /// check). sqlx prepares named statements there; behind a transaction-mode
    /// pooler they would outlive the transaction on whichever server
    /// connection ran it, so the transaction starts and ends (see
    /// [`Database::admin_commit`]) by dropping them (and any left by an
    /// earlier transaction that failed half-way).
    async fn admin(&self) -> Result<DatabaseTransaction, RepositoryError> {
        let transaction = self.connection.begin().await.map_err(repository_error)?;
        if self.pooler == Pooler::Transaction {
            transaction
                .execute_unprepared("DEALLOCATE ALL")
                .await
                .map_err(repository_error)?;
        }
        Ok(transaction)
    }

    /// Commits a transaction of [`Database::admin`].
    async fn admin_commit(&self, transaction: DatabaseTransaction) -> Result<(), RepositoryError> {
        if self.pooler == Pooler::Transaction {
            transaction
                .execute_unprepared("DEALLOCATE ALL")
                .await
                .map_err(repository_error)?;
        }
        transaction.commit().await.map_err(repository_error)
    }

    /// Runs one repository operation under the query timeout, once more when
    /// its error says that is safe and useful (see [`Retry`]): a read whose
    /// connection was found dead, anything a read-only database refused, and
    /// anything the server rolled back for a serialization failure or a
    /// deadlock. The second run shares the first one's time budget.
    pub(crate) async fn run<T, F>(
        &self,
        access: Access,
        operation: impl Fn() -> F,
    ) -> Result<T, RepositoryError>
    where
        F: Future<Output = Result<T, RepositoryError>>,
    {
        self.bounded(async {
            let error = match operation().await {
                Err(error) => error,
                done => return done,
            };
            let pool = self.postgres.as_ref().map(PgPool::manager);
            match retry(&error) {
                Retry::No => return Err(error),
                Retry::Again => {}
                Retry::OnNewConnection => {
                    // After a failover every pooled connection may still reach
                    // the old, read-only primary (and one opened while the
                    // database was read-only stays so for its life).
                    pool.inspect(|manager| manager.discard_open_connections());
                }
                Retry::ConnectionLost => {
                    // What ended this connection (a restart, a pooler reload,
                    // the network) may have ended the pooled ones too: each is
                    // checked before its next use, so that only this request
                    // pays (and a read, not even this one).
                    pool.inspect(|manager| manager.check_open_connections());
                    if access == Access::Write {
                        return Err(error);
                    }
                }
            }
            tracing::debug!(%error, ?access, "retrying a repository call once");
            operation().await
        })
        .await
    }

    /// Runs one repository operation under the query timeout.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, RepositoryError>>,
    ) -> Result<T, RepositoryError> {
        tokio::time::timeout(self.query_timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(RepositoryError::Unavailable(Box::new(TimedOut(
                    self.query_timeout,
                ))))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_leave_the_url_redactor() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/chat?sslmode=require"),
            "postgres://app:***@db:5432/chat?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@db/chat"),
            "postgres://app@db/chat"
        );
        assert_eq!(
            redact_url("postgres://a:b:c@host/x"),
            "postgres://a:***@host/x"
        );
        assert_eq!(
            redact_url("sqlite://chat.db?mode=rwc"),
            "sqlite://chat.db?mode=rwc"
        );
        assert_eq!(redact_url("sqlite:chat.db"), "sqlite:chat.db");
    }

    #[test]
    fn the_debug_output_of_a_configuration_hides_the_password() {
        let config = super::DatabaseConfig::new("postgres://app:s3cret@db/chat");
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://app:***@db/chat"), "{printed}");
    }

    #[test]
    fn careless_passwords_are_hidden_too() {
        // unencoded `/` and `@` in the password
        assert_eq!(
            redact_url("postgres://app:pa/ss@db/chat"),
            "postgres://app:***@db/chat"
        );
        assert_eq!(
            redact_url("postgres://app:p@ss@db/chat?sslmode=disable"),
            "postgres://app:***@db/chat?sslmode=disable"
        );
        // not a URL: nothing of it is shown
        let dsn = "host=db user=app password=s3cret";
        assert!(!redact_url(dsn).contains("s3cret"));
    }
}
