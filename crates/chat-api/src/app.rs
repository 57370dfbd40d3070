//! `Application::build(config)` binds the listener and wires everything, so
//! the binary and the tests start the very same server (tests on port 0).

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use chat_domain::{RepositoryError, SchemaMigrations};
use chat_infra::{Database, DatabaseConfig, Pooler, SeaOrmRepository};

use crate::auth::TokenVerifier;
use crate::config::{AppEnv, Config, ConfigError, Env, refuse};
use crate::error::Chain;
use crate::metrics::Metrics;
use crate::middleware::{self, HeaderLimit};
use crate::routes::{self, operations};
use crate::state::AppState;
use crate::storage::Storage;
use crate::telemetry;

/// How long start-up waits for migrations before serving anyway (503 until
/// they succeed in the background).
const MIGRATION_ATTEMPT: Duration = Duration::from_secs(30);
/// Pause between background migration attempts.
const MIGRATION_RETRY: Duration = Duration::from_secs(2);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configured keys cannot verify tokens.
    #[error("{0}")]
    Keys(String),
    /// The database URL is malformed.
    #[error(transparent)]
    Database(#[from] chat_infra::ConnectError),
    /// A migration failed for a reason other than the database being away.
    #[error("migrations failed")]
    Migration(#[source] RepositoryError),
    /// The address cannot be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The configured address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A built, bound, not yet running service.
pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    state: web::Data<AppState>,
    /// The background purge of expired idempotency keys, stopped with the server.
    purge: tokio::task::AbortHandle,
    /// The admin listener (`ADMIN_BIND_ADDRESS`), stopped with the server.
    admin: Option<(std::net::SocketAddr, Server)>,
    /// The key set's background refresh (with `JWT_JWKS_URL`), stopped with the server.
    key_refresh: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://chat.db?mode=rwc";

/// What `chat-api serve` reads: the HTTP service's settings, and the storage
/// adapter's (`DATABASE_*`), which only this wiring module names.
#[derive(Debug)]
pub struct Settings {
    /// The HTTP service's settings.
    pub config: Config,
    /// The database and its pool (the URL may hold a password: its `Debug`
    /// output hides it).
    pub database: DatabaseConfig,
}

impl Settings {
    /// Reads the process environment (after `.env`, which the binary loads).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`; tests pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config: Config::from_lookup(&lookup)?,
            database: database_from_lookup(&lookup)?,
        })
    }
}

/// Reads the `DATABASE_*` variables from the environment (all `migrate` needs).
pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
    database_from_lookup(|key| std::env::var(key).ok())
}

/// Reads the `DATABASE_*` variables through `lookup`, with their defaults and bounds.
pub fn database_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<DatabaseConfig, ConfigError> {
    let env = Env(&lookup);
    let mut settings = DatabaseConfig::new(
        env.get("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
    );
    settings.max_connections = env.parse_in("DATABASE_MAX_CONNECTIONS", 16, 1..=10_000)?;
    settings.min_connections = env.parse_in("DATABASE_MIN_CONNECTIONS", 0, 0..=10_000)?;
    settings.acquire_timeout =
        Duration::from_millis(env.parse_in("DATABASE_ACQUIRE_TIMEOUT_MS", 1_500, 1..=600_000)?);
    settings.query_timeout =
        Duration::from_millis(env.parse_in("DATABASE_QUERY_TIMEOUT_MS", 4_000, 1..=3_600_000)?);
    settings.max_lifetime =
        Duration::from_secs(env.parse_in("DATABASE_MAX_LIFETIME_SECONDS", 1_800, 1..=604_800)?);
    settings.idle_timeout =
        Duration::from_secs(env.parse_in("DATABASE_IDLE_TIMEOUT_SECONDS", 600, 1..=604_800)?);
    settings.pooler = match env.get("DATABASE_POOLER") {
        None => Pooler::None,
        Some(value) => Pooler::parse(&value).ok_or_else(|| {
            refuse(format!(
                "DATABASE_POOLER must be none or transaction, got '{value}'"
            ))
        })?,
    };
    if settings.min_connections > settings.max_connections {
        return Err(refuse(format!(
            "DATABASE_MIN_CONNECTIONS ({}) exceeds DATABASE_MAX_CONNECTIONS ({})",
            settings.min_connections, settings.max_connections
        )));
    }
    Ok(settings)
}

/// The storage these settings name: the SeaORM adapter over a lazily
/// connected PostgreSQL or SQLite pool.
pub async fn database_storage(database: &DatabaseConfig) -> Result<Storage, StartupError> {
    let database = Database::connect(database).await?;
    let chats = std::sync::Arc::new(SeaOrmRepository::new(database.clone()));
    Ok(Storage::new(chats, std::sync::Arc::new(database)))
}

impl Application {
    /// Connects the configured database (lazily), applies migrations when
    /// asked, and binds. `handle_signals` lets SIGTERM/SIGINT stop the server
    /// gracefully (the binary); tests stop it through [`Application::handle`].
    pub async fn build(settings: Settings, handle_signals: bool) -> Result<Self, StartupError> {
        let storage = database_storage(&settings.database).await?;
        let warm = settings.database.min_connections;
        let app = Self::build_on(settings.config, storage, handle_signals).await?;
        if warm > 0 {
            let pool = app.state.storage.pool.clone();
            tokio::spawn(async move { pool.warm_up(warm).await });
        }
        Ok(app)
    }

    /// Like [`Application::build`], over storage the caller built (the fast
    /// test tier passes the in-memory adapter).
    pub async fn build_on(
        config: Config,
        storage: Storage,
        handle_signals: bool,
    ) -> Result<Self, StartupError> {
        let verifier = TokenVerifier::new(&config.jwt).map_err(StartupError::Keys)?;
        let metrics = Metrics::new();
        if let Some(failures) = verifier.jwks_refresh_failures() {
            metrics.register(Box::new(failures));
        }
        // The first fetch of the key set is awaited (a few seconds at most),
        // so a service whose provider answers is ready when it listens; one
        // whose provider does not starts anyway and reports 503 on
        // /health/ready until the background task has fetched the set.
        if config.app_env == AppEnv::Production
            && config
                .jwt
                .jwks
                .as_ref()
                .is_some_and(|jwks| jwks.url.scheme() == "http")
        {
            // Allowed (a provider inside the cluster), but worth saying.
            tracing::warn!(
                "JWT_JWKS_URL is plain http://: whoever sits between the service and the provider can substitute keys; prefer https://"
            );
        }
        let key_refresh = verifier.start_key_refresh().await;
        let verifier = web::Data::new(verifier);
        let schema_ready = if config.run_migrations {
            migrate_at_start(storage.schema.as_ref()).await?
        } else {
            schema_at_start(storage.schema.as_ref()).await
        };
        let state = web::Data::new(AppState::new(storage, metrics, schema_ready));
        let purge = tokio::spawn(purge_idempotency_keys(
            std::sync::Arc::downgrade(&state.clone().into_inner()),
            config.idempotency_key_ttl,
        ))
        .abort_handle();
        if !schema_ready && config.run_migrations {
            tokio::spawn(migrate_in_background(state.clone()));
        } else if !schema_ready {
            tokio::spawn(await_migrations(state.clone()));
        }

        let listener =
            TcpListener::bind(config.bind_address).map_err(|source| StartupError::Bind {
                address: config.bind_address,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: config.bind_address,
            source,
        })?;
        let openapi = web::Data::new(operations::OpenApiJson(crate::openapi::document()));
        let header_limit = web::Data::new(HeaderLimit(config.http.max_header_bytes));
        let cors_origins = config.cors_allowed_origins.clone();
        let server_state = state.clone();
        let metrics_on = if config.admin_bind_address.is_some() {
            routes::MetricsOn::Admin
        } else {
            routes::MetricsOn::Public
        };
        let admin = match config.admin_bind_address {
            Some(address) => Some(admin_server(
                address,
                state.clone(),
                verifier.clone(),
                header_limit.clone(),
                &config,
            )?),
            None => None,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .app_data(verifier.clone())
                .app_data(openapi.clone())
                .app_data(header_limit.clone())
                .configure(|routes| routes::configure(routes, metrics_on))
                .default_service(web::to(operations::no_route))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                .wrap(from_fn(middleware::observe))
        })
        .workers(config.http.workers)
        .max_connections(config.http.max_connections)
        .client_request_timeout(config.http.client_request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(config.http.keep_alive)
        .shutdown_timeout(config.shutdown_grace.as_secs())
        // Signals are handled below, so SIGINT is as graceful as SIGTERM.
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: config.bind_address,
            source,
        })?
        .run();
        if handle_signals {
            let handle = server.handle();
            tokio::spawn(async move {
                wait_for_stop_signal().await;
                tracing::info!("stop signal received; finishing in-flight requests");
                handle.stop(true).await;
            });
        }
        Ok(Self {
            address,
            server,
            state,
            purge,
            admin,
            key_refresh,
        })
    }

    /// The admin listener's bound address, when `ADMIN_BIND_ADDRESS` is set.
    pub fn admin_address(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|(address, _)| *address)
    }

    /// The bound port (the real one when the configuration said 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound address.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Stops the server (gracefully with `stop(true)`).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The shared state (tests read the pool's statement counts through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped, then closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // The admin listener serves as long as the public one, probes included.
        let admin = self.admin.map(|(_, server)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some((serving, handle)) = admin {
            handle.stop(true).await;
            if let Ok(Err(error)) = serving.await {
                tracing::warn!(%error, "the admin listener failed");
            }
        }
        self.purge.abort();
        if let Some(key_refresh) = &self.key_refresh {
            key_refresh.abort();
        }
        self.state.storage.pool.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The admin listener: `/metrics` and the health probes on their own address,
/// one worker (scrapes and probes are few), the same graceful shutdown.
fn admin_server(
    address: std::net::SocketAddr,
    state: web::Data<AppState>,
    verifier: web::Data<TokenVerifier>,
    header_limit: web::Data<HeaderLimit>,
    config: &Config,
) -> Result<(std::net::SocketAddr, Server), StartupError> {
    let refused = |source| StartupError::Bind { address, source };
    let listener = TcpListener::bind(address).map_err(refused)?;
    let bound = listener.local_addr().map_err(refused)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Readiness asks the verifier whether the key set was fetched.
            .app_data(verifier.clone())
            .app_data(header_limit.clone())
            .configure(routes::configure_admin)
            .default_service(web::to(operations::no_route))
            .wrap(from_fn(middleware::observe))
    })
    .workers(1)
    .client_request_timeout(config.http.client_request_timeout)
    .keep_alive(config.http.keep_alive)
    .shutdown_timeout(config.shutdown_grace.as_secs())
    .disable_signals()
    .listen(listener)
    .map_err(refused)?
    .run();
    Ok((bound, server))
}

/// CORS is off (no cross-origin access) unless origins are configured.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default();
    if origins.is_empty() {
        return cors;
    }
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors.allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static(crate::idempotency::IDEMPOTENCY_KEY),
            telemetry::X_REQUEST_ID,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::LINK,
            header::RETRY_AFTER,
            header::HeaderName::from_static(routes::chats::X_TOTAL_COUNT),
            header::HeaderName::from_static(routes::chats::X_NEXT_CURSOR),
            header::HeaderName::from_static(crate::idempotency::IDEMPOTENT_REPLAYED),
            telemetry::X_REQUEST_ID,
        ])
        .max_age(600)
}

/// Applies migrations; `Ok(false)` when the database is away (serve 503s and
/// keep trying), an error when a migration itself fails.
async fn migrate_at_start(schema: &dyn SchemaMigrations) -> Result<bool, StartupError> {
    match tokio::time::timeout(MIGRATION_ATTEMPT, schema.migrate()).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(RepositoryError::Unavailable(cause))) => {
            tracing::warn!(
                error = %Chain(cause.as_ref()),
                "database unavailable at start; serving 503 until migrations apply"
            );
            Ok(false)
        }
        Ok(Err(error)) => Err(StartupError::Migration(error)),
        Err(_) => {
            tracing::warn!("migrations did not finish in time; retrying in the background");
            Ok(false)
        }
    }
}

/// With `RUN_MIGRATIONS=false` someone else migrates (`chat-api migrate`, a
/// deploy job): serve 503 until they have, rather than 500s from missing tables.
async fn schema_at_start(schema: &dyn SchemaMigrations) -> bool {
    match tokio::time::timeout(MIGRATION_ATTEMPT, schema.schema_is_current()).await {
        Ok(Ok(true)) => true,
        Ok(Ok(false)) => {
            tracing::warn!(
                "the database schema is not migrated and RUN_MIGRATIONS=false: \
                 serving 503 until `chat-api migrate` has run"
            );
            false
        }
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("database unavailable at start; serving 503 until it answers");
            false
        }
    }
}

async fn await_migrations(state: web::Data<AppState>) {
    loop {
        tokio::time::sleep(MIGRATION_RETRY).await;
        let check =
            tokio::time::timeout(MIGRATION_ATTEMPT, state.storage.schema.schema_is_current());
        if let Ok(Ok(true)) = check.await {
            tracing::info!("database schema migrated; serving");
            state.mark_schema_ready();
            return;
        }
    }
}

async fn migrate_in_background(state: web::Data<AppState>) {
    loop {
        tokio::time::sleep(MIGRATION_RETRY).await;
        match tokio::time::timeout(MIGRATION_ATTEMPT, state.storage.schema.migrate()).await {
            Ok(Ok(())) => {
                tracing::info!("migrations applied; serving");
                state.mark_schema_ready();
                return;
            }
            Ok(Err(RepositoryError::Unavailable(_))) | Err(_) => continue,
            Ok(Err(error)) => {
                tracing::error!(error = %Chain(&error), "migrations failed; /chat stays unavailable");
                return;
            }
        }
    }
}

/// Keys in a purge batch: small, so a batch holds its row locks briefly.
const PURGE_BATCH: u32 = 500;

/// How often expired idempotency keys are looked for: a tenth of the time to
/// live, between 1 s and 60 s, so a key outlives its TTL by little.
fn purge_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Deletes idempotency keys older than `ttl`, in small batches, until the
/// server's state is gone (or the task is aborted at shutdown). A failed
/// round is logged and tried again at the next tick.
async fn purge_idempotency_keys(state: std::sync::Weak<AppState>, ttl: Duration) {
    let interval = purge_interval(ttl);
    loop {
        tokio::time::sleep(interval).await;
        let Some(state) = state.upgrade() else {
            return;
        };
        let Ok(chats) = state.chats() else {
            continue;
        };
        let Some(cutoff) = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| chrono::Utc::now().checked_sub_signed(ttl))
        else {
            return;
        };
        let cutoff = chat_domain::Timestamp::from_datetime(cutoff);
        match chats.purge_idempotency_keys(cutoff, PURGE_BATCH).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
            Err(error) => {
                tracing::warn!(error = %Chain(&error), "purging expired idempotency keys failed")
            }
        }
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn the_default_database_is_the_embedded_sqlite_file() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(settings.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(settings.database.max_connections, 16);
    }

    #[test]
    fn pool_settings_are_checked_and_name_their_variable() {
        let error = settings(&[("DATABASE_MAX_CONNECTIONS", "0")]).expect_err("refused");
        assert!(error.to_string().contains("between 1 and"), "{error}");
        let error = settings(&[
            ("DATABASE_MIN_CONNECTIONS", "20"),
            ("DATABASE_MAX_CONNECTIONS", "10"),
        ])
        .expect_err("refused");
        assert!(error.to_string().contains("exceeds"), "{error}");
    }

    #[test]
    fn connections_age_out_by_default() {
        let database = settings(&[]).expect("valid").database;
        assert_eq!(database.max_lifetime, Duration::from_secs(1800));
        assert_eq!(database.idle_timeout, Duration::from_secs(600));
        let told = settings(&[
            ("DATABASE_MAX_LIFETIME_SECONDS", "60"),
            ("DATABASE_IDLE_TIMEOUT_SECONDS", "5"),
        ])
        .expect("valid")
        .database;
        assert_eq!(told.max_lifetime, Duration::from_secs(60));
        assert_eq!(told.idle_timeout, Duration::from_secs(5));
        let error = settings(&[("DATABASE_IDLE_TIMEOUT_SECONDS", "0")]).expect_err("refused");
        assert!(
            error.to_string().contains("DATABASE_IDLE_TIMEOUT_SECONDS"),
            "{error}"
        );
    }

    #[test]
    fn the_pooler_is_none_unless_told_otherwise() {
        assert_eq!(settings(&[]).expect("valid").database.pooler, Pooler::None);
        let told = settings(&[("DATABASE_POOLER", "transaction")]).expect("valid");
        assert_eq!(told.database.pooler, Pooler::Transaction);
        let error = settings(&[("DATABASE_POOLER", "session")]).expect_err("refused");
        assert!(error.to_string().contains("DATABASE_POOLER"), "{error}");
    }

    #[test]
    fn the_database_password_stays_out_of_debug_output() {
        let settings = settings(&[("DATABASE_URL", "postgres://u:pw-123@h/db")]).expect("valid");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("pw-123"), "{printed}");
    }
}
