//! Where the two backends differ: how a repository call gets a connection.
//!
//! The repository runs SeaORM queries against a [`Session`], which implements
//! SeaORM's `ConnectionTrait` for both backends:
//!
//! - **PostgreSQL**: one connection from a pool of our own (deadpool over sqlx
//!   connections) for the whole call. sqlx's own pool pings every connection when
//!   it is returned — a full round trip to the server after every statement — to
//!   catch connections left mid-protocol by a cancelled query. Here each
//!   connection carries a flag instead: a statement interrupted mid-flight (a
//!   timeout, a client gone) leaves it marked, and a marked connection is
//!   discarded at its next checkout. A clean one is reused as is. Connections
//!   idle for a while are pinged before reuse, so a restarted server costs no
//!   failed request. Connections older than the maximum lifetime or idle
//!   longer than the idle timeout are never handed out: they are closed at
//!   checkout, and a background task closes them while they sit in the pool.
//!   After a statement found its connection dead, every pooled connection is
//!   pinged before its next use; after the database refused a write as
//!   read-only, every connection opened before is closed instead (see
//!   `Database::run`, which decides). Every repository call is a single
//!   statement here (create is one writable CTE), so no transaction is ever
//!   begun on this pool.
//! - **SQLite**: SeaORM's own pool (in-process; nothing to save), and SeaORM's
//!   transactions where one statement cannot do the work (create).
//!
//! Every statement a session runs is counted in one place, [`Session::count`].
//!
//! Behind a transaction-mode pooler (`Pooler::Transaction`) the PostgreSQL
//! connections send each statement as one simple-protocol query with its
//! parameters written in (see `inline.rs` for why), and no startup parameter
//! beyond what such a pooler tracks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_domain::RepositoryError;
use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleError, RecycleResult};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sea_orm::sqlx::{self, ConnectOptions, Connection, Executor};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::database::{DatabaseConfig, Pooler, QueryStats};
use crate::error::{TimedOut, repository_error};
use crate::inline::inline;

/// A pooled PostgreSQL connection and what we know of its protocol state.
#[derive(Debug)]
pub(crate) struct PgConn {
    raw: PgConnection,
    /// A statement was sent and its answer not fully read.
    busy: bool,
    /// Statements go as simple queries with their parameters written in
    /// (behind a transaction-mode pooler).
    inline: bool,
    /// [`PgManager::discards`] when this connection was opened.
    generation: u64,
    /// [`PgManager::checks`] when this connection was last known alive.
    checked: u64,
}

/// Opens connections and decides whether a returned one may be reused.
#[derive(Debug)]
pub(crate) struct PgManager {
    options: PgConnectOptions,
    ping_idle_after: Duration,
    inline: bool,
    max_lifetime: Duration,
    idle_timeout: Duration,
    /// Bumped when every open connection must go (the database turned out
    /// read-only): connections of an older generation are closed at checkout.
    discards: AtomicU64,
    /// Bumped when every open connection is suspect (one was found dead):
    /// each is pinged at its next checkout.
    checks: AtomicU64,
}

impl PgManager {
    /// No connection opened so far will be handed out again.
    pub(crate) fn discard_open_connections(&self) {
        self.discards.fetch_add(1, Ordering::Relaxed);
    }

    /// Every connection opened so far is pinged before its next use.
    pub(crate) fn check_open_connections(&self) {
        self.checks.fetch_add(1, Ordering::Relaxed);
    }
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConn, sqlx::Error> {
        // Read before connecting: a bump during the connect applies to it too.
        let generation = self.discards.load(Ordering::Relaxed);
        let checked = self.checks.load(Ordering::Relaxed);
        let raw = self.options.connect().await?;
        Ok(PgConn {
            raw,
            busy: false,
            inline: self.inline,
            generation,
            checked,
        })
    }

    async fn recycle(&self, conn: &mut PgConn, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if conn.busy {
            // Mid-protocol: unread answers. Closing the connection is the only
            // safe reset.
            return Err(RecycleError::message(
                "interrupted mid-statement; discarded",
            ));
        }
        if metrics.age() >= self.max_lifetime {
            return Err(RecycleError::message(
                "older than the maximum lifetime; closed",
            ));
        }
        // `last_used` counts from the last checkout: an over-estimate of the
        // idle time, so a connection is closed early rather than late.
        if metrics.last_used() >= self.idle_timeout {
            return Err(RecycleError::message("idle too long; closed"));
        }
        if conn.generation < self.discards.load(Ordering::Relaxed) {
            return Err(RecycleError::message(
                "opened before the database refused a write as read-only; closed",
            ));
        }
        let checks = self.checks.load(Ordering::Relaxed);
        if metrics.last_used() > self.ping_idle_after || conn.checked < checks {
            conn.raw.ping().await.map_err(RecycleError::Backend)?;
            conn.checked = checks;
        }
        Ok(())
    }
}

/// The PostgreSQL connection pool.
pub(crate) type PgPool = managed::Pool<PgManager>;

/// Builds the pool; no connection is opened until one is needed.
pub(crate) fn pg_pool(config: &DatabaseConfig) -> Option<PgPool> {
    let DatabaseConfig {
        max_connections,
        acquire_timeout,
        ping_idle_after,
        query_timeout,
        pooler,
        max_lifetime,
        idle_timeout,
        ..
    } = *config;
    let options = config
        .url
        .parse::<PgConnectOptions>()
        .ok()?
        .disable_statement_logging();
    let inline = pooler == Pooler::Transaction;
    let options = if inline {
        // A transaction-mode pooler rejects the `options` startup parameter
        // (and would not keep it per client anyway): the statement timeout
        // comes from the role (`ALTER ROLE … SET statement_timeout`).
        options.statement_cache_capacity(0)
    } else {
        // The server gives up on a statement before we do (at 80 % of our
        // timeout), so a request answered 503 for its timeout has almost always
        // had its statement cancelled first: it does not go on running, or
        // commit a write, server-side after the client was told it failed.
        // What remains possible (an answer delayed past the last 20 %) is in
        // docs/operations.md; Idempotency-Key makes such a create safe to retry.
        options.options([(
            "statement_timeout",
            server_statement_timeout(query_timeout)
                .as_millis()
                .to_string(),
        )])
    };
    managed::Pool::builder(PgManager {
        options,
        ping_idle_after,
        inline,
        max_lifetime,
        idle_timeout,
        discards: AtomicU64::new(0),
        checks: AtomicU64::new(0),
    })
    .max_size(usize::try_from(max_connections).unwrap_or(usize::MAX))
    .wait_timeout(Some(acquire_timeout))
    .create_timeout(Some(acquire_timeout))
    .recycle_timeout(Some(acquire_timeout))
    // The most recently used connection first: under light load the same few
    // stay warm and the rest sit idle.
    .queue_mode(QueueMode::Lifo)
    .runtime(deadpool::Runtime::Tokio1)
    .build()
    .ok()
    .inspect(|pool| close_aged(pool, max_lifetime, idle_timeout))
}

/// Closes, in the background, pooled connections past their lifetime or idle
/// for too long, so none is kept open for nothing (checkouts check too). Ends
/// when the pool is closed or dropped.
fn close_aged(pool: &PgPool, max_lifetime: Duration, idle_timeout: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let pool = pool.weak();
    let every = (max_lifetime.min(idle_timeout) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(pool) = pool.upgrade() else { break };
            if pool.is_closed() {
                break;
            }
            pool.retain(|_, metrics| {
                metrics.age() < max_lifetime && metrics.last_used() < idle_timeout
            });
        }
    });
}

/// The readiness probe's own PostgreSQL connection, never one of the request
/// pool's: probes do not queue behind `/chat` traffic for a pooled connection,
/// and a flood of probes takes no connection from `/chat`. Opened on first
/// use, replaced when a probe was interrupted or failed, or when it is past
/// the maximum lifetime or idle timeout; probes take turns on it.
#[derive(Debug)]
pub(crate) struct Probe {
    options: PgConnectOptions,
    max_lifetime: Duration,
    idle_timeout: Duration,
    /// The connection, when it was opened and when it was last used.
    conn: Mutex<Option<(PgConn, Instant, Instant)>>,
}

impl Probe {
    /// The probe over the same settings as the pool.
    pub(crate) fn new(pool: &PgPool) -> Self {
        let manager = pool.manager();
        Self {
            options: manager.options.clone(),
            max_lifetime: manager.max_lifetime,
            idle_timeout: manager.idle_timeout,
            conn: Mutex::new(None),
        }
    }

    /// One `SELECT 1` on the probe's connection. When the connection it had
    /// kept turns out dead (the server ended it meanwhile), once more on a new
    /// one: a restart or a failover between two probes is no failed probe.
    pub(crate) async fn ping(&self) -> Result<(), RepositoryError> {
        let mut slot = self.conn.lock().await;
        let stale = slot.as_ref().is_some_and(|(conn, opened, used)| {
            conn.busy
                || opened.elapsed() >= self.max_lifetime
                || used.elapsed() >= self.idle_timeout
        });
        if stale {
            *slot = None;
        }
        let kept = slot.is_some();
        match self.ping_on(&mut slot).await {
            Err(_) if kept => self.ping_on(&mut slot).await,
            done => done,
        }
    }

    /// `SELECT 1` on the connection in `slot`, opened first when there is
    /// none; a failure empties the slot.
    async fn ping_on(
        &self,
        slot: &mut Option<(PgConn, Instant, Instant)>,
    ) -> Result<(), RepositoryError> {
        let (conn, _, used) = match &mut *slot {
            Some(open) => open,
            empty @ None => {
                let raw = self.options.connect().await.map_err(|error| {
                    repository_error(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))))
                })?;
                let now = Instant::now();
                let conn = PgConn {
                    raw,
                    busy: false,
                    inline: true,
                    generation: 0,
                    checked: 0,
                };
                empty.insert((conn, now, now))
            }
        };
        conn.busy = true;
        *used = Instant::now();
        match conn.raw.execute(sqlx::AssertSqlSafe("SELECT 1")).await {
            Ok(_) => {
                conn.busy = false;
                Ok(())
            }
            Err(error) => {
                *slot = None;
                Err(sqlx_error(error))
            }
        }
    }
}

/// Checks out a PostgreSQL connection; any failure means "unavailable".
pub(crate) async fn checkout(pool: &PgPool) -> Result<Object<PgManager>, RepositoryError> {
    pool.get().await.map_err(|error| match error {
        PoolError::Timeout(_) => RepositoryError::Unavailable(Box::new(TimedOut(
            pool.timeouts().wait.unwrap_or_default(),
        ))),
        PoolError::Backend(error) => {
            repository_error(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))))
        }
        other => RepositoryError::Unavailable(format!("connection pool: {other}").into()),
    })
}

/// One repository call's connection.
#[derive(Debug)]
pub(crate) enum Session {
    /// A PostgreSQL connection of our pool, held for the call.
    Postgres {
        /// The connection; the lock only satisfies `&self` methods (never contended).
        conn: Mutex<Object<PgManager>>,
        /// Where statements are counted.
        stats: Arc<QueryStats>,
    },
    /// SeaORM's pool (SQLite).
    Pool {
        /// The pool.
        connection: DatabaseConnection,
        /// Where statements are counted.
        stats: Arc<QueryStats>,
    },
    /// A SeaORM transaction (SQLite).
    Transaction {
        /// The transaction.
        transaction: DatabaseTransaction,
        /// Where statements are counted.
        stats: Arc<QueryStats>,
    },
}

impl Session {
    /// Begins a transaction, for work that one statement cannot do. Only SQLite
    /// needs one: on PostgreSQL every repository call is a single statement.
    pub(crate) async fn begin(self) -> Result<Self, RepositoryError> {
        match self {
            Self::Pool { connection, stats } => Ok(Self::Transaction {
                transaction: connection.begin().await.map_err(repository_error)?,
                stats,
            }),
            Self::Postgres { .. } => Err(RepositoryError::Other(
                "no transaction on PostgreSQL: write in one statement".into(),
            )),
            Self::Transaction { .. } => Err(RepositoryError::Other("nested transaction".into())),
        }
    }

    /// Commits the transaction begun with [`Session::begin`].
    pub(crate) async fn commit(self) -> Result<(), RepositoryError> {
        match self {
            Self::Transaction { transaction, .. } => {
                transaction.commit().await.map_err(repository_error)
            }
            Self::Postgres { .. } | Self::Pool { .. } => Ok(()),
        }
    }

    /// Counts one statement: the only place statements are counted.
    fn count(&self) {
        let stats = match self {
            Self::Postgres { stats, .. }
            | Self::Pool { stats, .. }
            | Self::Transaction { stats, .. } => stats,
        };
        stats.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// A span for one statement, which the trace exporter turns into a client
    /// span (`db.system.name`, `db.operation.name`; never the statement's
    /// values). A debug span: disabled, and free, unless traces are exported
    /// or debug logging asks for it.
    fn statement_span(&self, sql: &str) -> tracing::Span {
        let system = match self.get_database_backend() {
            DbBackend::Postgres => "postgresql",
            DbBackend::Sqlite => "sqlite",
            _ => "other_sql",
        };
        tracing::debug_span!(
            target: "chat_infra::statement",
            "statement",
            otel.name = operation(sql),
            otel.kind = "client",
            db.system.name = system,
            db.operation.name = operation(sql),
        )
    }

    /// Whether a `WITH` clause may hold an `INSERT` (PostgreSQL, not SQLite).
    pub(crate) fn supports_writable_cte(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// A trivial round trip, for the readiness probe.
    pub(crate) async fn ping(&self) -> Result<(), RepositoryError> {
        match self {
            Self::Postgres { conn, .. } => {
                let mut guard = conn.lock().await;
                guard.busy = true;
                guard.raw.ping().await.map_err(sqlx_error)?;
                guard.busy = false;
                Ok(())
            }
            Self::Pool { connection, .. } => connection.ping().await.map_err(repository_error),
            Self::Transaction { .. } => Ok(()),
        }
    }
}

fn sqlx_error(error: sqlx::Error) -> RepositoryError {
    repository_error(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))))
}

fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
}

fn exec_error(error: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(error)))
}

/// The statement as a prepared (and per-connection cached) sqlx query.
fn prepared(statement: &Statement) -> sqlx::query::Query<'_, sqlx::Postgres, SqlxValues> {
    let values = statement
        .values
        .clone()
        .unwrap_or_else(|| sea_orm::sea_query::Values(Vec::new()));
    sqlx::query_with(
        sqlx::AssertSqlSafe(statement.sql.as_str()),
        SqlxValues(values),
    )
}

/// The statement as one simple-protocol query, its parameters written in.
fn inlined(statement: &Statement) -> Result<String, DbErr> {
    match &statement.values {
        Some(values) => {
            inline(&statement.sql, &values.0).map_err(|error| DbErr::Custom(error.to_string()))
        }
        None => Ok(statement.sql.clone()),
    }
}

impl Session {
    /// Runs one statement on the PostgreSQL connection, keeping its flag true.
    /// `run` is told whether to send it inlined (see [`inlined`]).
    async fn on_postgres<T>(
        conn: &Mutex<Object<PgManager>>,
        run: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        let mut guard = conn.lock().await;
        guard.busy = true;
        let inline = guard.inline;
        let result = run(&mut guard.raw, inline).await;
        // Only a completed exchange leaves the protocol in sync; an error is
        // treated as possibly not (the connection is then discarded, rarely).
        guard.busy = result.is_err();
        result
    }
}

#[async_trait]
impl ConnectionTrait for Session {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Postgres { .. } => DbBackend::Postgres,
            Self::Pool { connection, .. } => connection.get_database_backend(),
            Self::Transaction { transaction, .. } => transaction.get_database_backend(),
        }
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        self.count();
        let span = self.statement_span(&statement.sql);
        async move {
            match self {
                Self::Postgres { conn, .. } => {
                    Self::on_postgres(conn, async |raw, inline| {
                        let done = if inline {
                            raw.execute(sqlx::AssertSqlSafe(inlined(&statement)?)).await
                        } else {
                            prepared(&statement).execute(raw).await
                        };
                        done.map(ExecResult::from).map_err(exec_error)
                    })
                    .await
                }
                Self::Pool { connection, .. } => connection.execute_raw(statement).await,
                Self::Transaction { transaction, .. } => transaction.execute_raw(statement).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.count();
        let span = self.statement_span(sql);
        async move {
            match self {
                Self::Postgres { conn, .. } => {
                    Self::on_postgres(conn, async |raw, _| {
                        raw.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                            .await
                            .map(ExecResult::from)
                            .map_err(exec_error)
                    })
                    .await
                }
                Self::Pool { connection, .. } => connection.execute_unprepared(sql).await,
                Self::Transaction { transaction, .. } => transaction.execute_unprepared(sql).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.count();
        let span = self.statement_span(&statement.sql);
        async move {
            match self {
                Self::Postgres { conn, .. } => {
                    Self::on_postgres(conn, async |raw, inline| {
                        let row: Result<Option<PgRow>, _> = if inline {
                            raw.fetch_optional(sqlx::AssertSqlSafe(inlined(&statement)?))
                                .await
                        } else {
                            prepared(&statement).fetch_optional(raw).await
                        };
                        row.map(|row| row.map(QueryResult::from))
                            .map_err(query_error)
                    })
                    .await
                }
                Self::Pool { connection, .. } => connection.query_one_raw(statement).await,
                Self::Transaction { transaction, .. } => transaction.query_one_raw(statement).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.count();
        let span = self.statement_span(&statement.sql);
        async move {
            match self {
                Self::Postgres { conn, .. } => {
                    Self::on_postgres(conn, async |raw, inline| {
                        let rows: Result<Vec<PgRow>, _> = if inline {
                            raw.fetch_all(sqlx::AssertSqlSafe(inlined(&statement)?))
                                .await
                        } else {
                            prepared(&statement).fetch_all(raw).await
                        };
                        rows.map(|rows| rows.into_iter().map(QueryResult::from).collect())
                            .map_err(query_error)
                    })
                    .await
                }
                Self::Pool { connection, .. } => connection.query_all_raw(statement).await,
                Self::Transaction { transaction, .. } => transaction.query_all_raw(statement).await,
            }
        }
        .instrument(span)
        .await
    }
}

/// The statement's operation (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, …): its
/// first keyword, or for a `WITH` statement the verb of its main part (the
/// first verb outside the parentheses of the common table expressions).
fn operation(sql: &str) -> &'static str {
    const VERBS: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];
    let known = |word: &str| {
        VERBS
            .into_iter()
            .chain(["WITH", "BEGIN", "COMMIT", "ROLLBACK", "SET", "DEALLOCATE"])
            .find(|verb| word.eq_ignore_ascii_case(verb))
    };
    let first = sql.split_whitespace().next().unwrap_or_default();
    match known(first) {
        Some("WITH") => {}
        Some(verb) => return verb,
        None => return "OTHER",
    }
    // Words at depth 0, outside quotes: `WITH name AS (…) INSERT …`.
    let (mut depth, mut quote, mut word) = (0_i32, None, String::new());
    for c in sql.chars() {
        match (quote, c) {
            (Some(open), _) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, c) if depth == 0 && c.is_ascii_alphabetic() => {
                word.push(c);
                continue;
            }
            _ => {}
        }
        if let Some(verb) = VERBS
            .into_iter()
            .find(|verb| word.eq_ignore_ascii_case(verb))
        {
            return verb;
        }
        word.clear();
    }
    "WITH"
}

/// The server-side `statement_timeout` for a client-side `query_timeout`: 80 %
/// of it (at least 1 ms), so that the server cancels first.
pub(crate) fn server_statement_timeout(query_timeout: Duration) -> Duration {
    (query_timeout - query_timeout / 5).max(Duration::from_millis(1))
}

#[cfg(test)]
mod statement_timeout_tests {
    use super::*;

    #[test]
    fn a_statement_is_named_by_its_operation() {
        assert_eq!(operation(r#"SELECT "chats"."id" FROM "chats""#), "SELECT");
        assert_eq!(operation("  insert INTO x VALUES (1)"), "INSERT");
        assert_eq!(
            operation(
                r#"WITH "provisioned" AS (INSERT INTO "users" ("id") VALUES ($1) ON CONFLICT DO NOTHING) INSERT INTO "chats" ("id", "title") VALUES ($2, 'a (b) select') RETURNING "id""#
            ),
            "INSERT"
        );
        assert_eq!(
            operation(r#"WITH "k" AS (SELECT 1) UPDATE "chats" SET "title" = 'x'"#),
            "UPDATE"
        );
        assert_eq!(operation("VACUUM"), "OTHER");
    }

    #[test]
    fn the_server_gives_up_before_the_client() {
        assert_eq!(
            server_statement_timeout(Duration::from_millis(4_000)),
            Duration::from_millis(3_200)
        );
        assert_eq!(
            server_statement_timeout(Duration::from_millis(500)),
            Duration::from_millis(400)
        );
        assert_eq!(
            server_statement_timeout(Duration::from_millis(1)),
            Duration::from_millis(1)
        );
    }
}
