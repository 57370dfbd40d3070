//! Test support shared by the workspace's test suites.
//!
//! [`TestDatabase`] gives each test its own PostgreSQL database, created with a
//! unique name and dropped when the value goes out of scope (even when the test
//! panics), so tests run in parallel and leave nothing behind.
//!
//! Which PostgreSQL server:
//! 1. `TEST_DATABASE_URL`, when set (CI sets nothing and gets the default below);
//! 2. otherwise, when a Docker engine answers, a `postgres:15-alpine` container
//!    started by `testcontainers`, named `chat-api-test-postgres` and kept
//!    running between runs so later runs start at once (`docker rm -f
//!    chat-api-test-postgres` removes it);
//! 3. otherwise the local server, `postgres://postgres@127.0.0.1:5432/postgres`.
//!
//! When the server cannot be reached the test fails with a message saying how
//! to start one; nothing is ever skipped.
//!
//! [`PgBouncer`] puts a PgBouncer in transaction pooling mode in front of that
//! server, for the tests that run through a connection pooler; [`FaultProxy`]
//! puts a TCP proxy there that injects network faults (latency, resets, a
//! black hole).

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};
use tokio::sync::OnceCell;
use url::Url;

mod fault_proxy;
mod pgbouncer;

pub use fault_proxy::{Fault, FaultProxy};
pub use pgbouncer::PgBouncer;

/// The server used when `TEST_DATABASE_URL` is unset and no Docker engine answers.
pub const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const CONTAINER_NAME: &str = "chat-api-test-postgres";

/// A fresh, empty PostgreSQL database, dropped on `Drop`.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server: String,
}

impl TestDatabase {
    /// Creates a database with a unique name on the test server.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses, with instructions.
    pub async fn create() -> Self {
        let server = server_url().await;
        let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_connection(&server).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let _ = admin.close().await;
        let url = with_database(&server, &name);
        Self { name, url, server }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we can rely on (the test's runtime
        // may be shutting down), so the DROP runs on a thread with its own runtime.
        let server = self.server.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = admin_connection(&server).await;
                let result = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                result.map(|_| ()).map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            eprintln!(
                "warning: test database {} was not dropped: {dropped:?}",
                self.name
            );
        }
    }
}

/// A fresh SQLite database file in a temporary directory, removed on `Drop`.
#[derive(Debug)]
pub struct TestSqlite {
    dir: tempfile::TempDir,
    url: String,
}

impl TestSqlite {
    /// Creates the temporary directory; the file appears on first connection.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn create() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for SQLite");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
        Self { dir, url }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the database file.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// The test server's URL (to its maintenance database), resolved once per process.
pub async fn server_url() -> String {
    static SERVER: OnceCell<String> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
                return url;
            }
            if docker_engine_answers() {
                return start_container().await;
            }
            LOCAL_SERVER.to_owned()
        })
        .await
        .clone()
}

async fn admin_connection(server: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(server.to_owned());
    options
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await.unwrap_or_else(|error| {
        panic!(
            "\n\nPostgreSQL is not reachable at {server}: {error}\n\
             The PostgreSQL tests need a server. Either:\n\
             - start the local one:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             - or run one in Docker: docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15-alpine\n\
             - or point the tests at one: TEST_DATABASE_URL=postgres://user:password@host:5432/postgres\n\n",
            server = redact(server)
        )
    })
}

/// `server` with its path (database name) replaced.
fn with_database(server: &str, database: &str) -> String {
    let mut url = Url::parse(server).expect("TEST_DATABASE_URL is a valid URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

fn redact(server: &str) -> String {
    match Url::parse(server) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => server.to_owned(),
    }
}

/// A Docker engine answers on `DOCKER_HOST` or the default socket.
fn docker_engine_answers() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
}

async fn start_container() -> String {
    use testcontainers::{ImageExt, ReuseDirective, runners::AsyncRunner};
    use testcontainers_modules::postgres::Postgres;

    let container = Postgres::default()
        .with_host_auth()
        .with_tag("15-alpine")
        .with_container_name(CONTAINER_NAME)
        .with_reuse(ReuseDirective::Always)
        .start()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "a Docker engine answers but the PostgreSQL container did not start: {error}\n\
                 Set TEST_DATABASE_URL to use another server."
            )
        });
    let host = container.get_host().await.expect("container host");
    let port = container
        .get_host_port_ipv4(5432)
        .await
        .expect("container port");
    // A reused container is never reaped on drop: it stays for the next run.
    format!("postgres://postgres@{host}:{port}/postgres")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact(LOCAL_SERVER), LOCAL_SERVER);
    }

    #[tokio::test]
    async fn pgbouncer_forwards_to_the_test_databases() {
        let database = TestDatabase::create().await;
        let bouncer = PgBouncer::start().await;
        let through = bouncer.url_for(database.url());
        assert!(
            through.contains(&format!(":{}/", bouncer.port())),
            "{through}"
        );
        let mut options = ConnectOptions::new(through);
        options.max_connections(1).sqlx_logging(false);
        let connection = sea_orm::Database::connect(options)
            .await
            .unwrap_or_else(|error| panic!("through pgbouncer: {error}\n{}", bouncer.log()));
        connection
            .execute_unprepared("SELECT 1")
            .await
            .expect("a statement through pgbouncer");
        let _ = connection.close().await;
        let port = bouncer.port();
        drop(bouncer);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "pgbouncer stopped on drop"
        );
    }

    #[tokio::test]
    async fn a_test_database_exists_until_dropped() {
        let database = TestDatabase::create().await;
        let name = database.name().to_owned();
        let server = server_url().await;
        let exists = |admin: DatabaseConnection, name: String| async move {
            use sea_orm::{DbBackend, Statement};
            admin
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    [name.into()],
                ))
                .await
                .expect("catalog query")
                .is_some()
        };
        assert!(exists(admin_connection(&server).await, name.clone()).await);
        drop(database);
        assert!(!exists(admin_connection(&server).await, name).await);
    }
}
