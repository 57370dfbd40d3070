//! The harness: a real server on port 0, spoken to over TCP with a real HTTP
//! client and really signed tokens, over one of three storages:
//!
//! - the in-memory adapter (the fast tier: no database, seconds);
//! - a fresh PostgreSQL database (the real tier);
//! - a fresh PostgreSQL database reached through PgBouncer in transaction
//!   pooling mode, with `DATABASE_POOLER=transaction` (how fleets connect).
//!
//! A test written once inside [`on_every_adapter!`] runs on all three: its
//! body calls [`TestApp::spawn`], which starts the server on the backend that
//! the generated test (`…::on_memory`, `…::on_postgres` or `…::on_pgbouncer`)
//! chose. Tests about the database itself use `#[tokio::test]` and get
//! PostgreSQL directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::web;
use chat_api::Application;
use chat_api::app::Settings as ServiceSettings;
use chat_api::state::AppState;
use chat_api::storage::Storage;
use chat_domain::memory::InMemoryRepository;
use chat_testing::{PgBouncer, TestDatabase};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use uuid::Uuid;

/// The HS256 secret every default test server trusts.
pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// A path under `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Where a test's server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `InMemoryRepository`: no database at all.
    Memory,
    /// A fresh PostgreSQL database per server.
    Postgres,
    /// A fresh PostgreSQL database per server, reached through the test
    /// process's PgBouncer (transaction pooling) with `DATABASE_POOLER=transaction`.
    PgBouncer,
}

tokio::task_local! {
    static BACKEND: Backend;
}

impl Backend {
    /// Runs a test body with `TestApp::spawn*` starting servers on this backend.
    pub async fn run(self, test: impl Future<Output = ()>) {
        BACKEND.scope(self, test).await;
    }

    /// The backend of the running test: PostgreSQL outside [`on_every_adapter!`].
    fn current() -> Self {
        BACKEND
            .try_with(|backend| *backend)
            .unwrap_or(Self::Postgres)
    }
}

/// Runs one test on every storage adapter: `name::on_memory` (the fast tier,
/// `cargo test -p chat-api --test api on_memory`), `name::on_postgres` and
/// `name::on_pgbouncer`.
macro_rules! on_every_adapter {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn test() $body

            #[tokio::test]
            async fn on_memory() {
                crate::helpers::Backend::Memory.run(test()).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                crate::helpers::Backend::Postgres.run(test()).await;
            }

            #[tokio::test]
            async fn on_pgbouncer() {
                crate::helpers::Backend::PgBouncer.run(test()).await;
            }
        }
    };
}

/// A running server and what it runs on.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The admin listener's `http://127.0.0.1:<port>`, when `ADMIN_BIND_ADDRESS` is set.
    pub admin_address: Option<String>,
    /// A client that never follows redirects (none should ever be sent).
    pub client: Client,
    /// The server's state: its pool, statement counters and use cases.
    pub state: web::Data<AppState>,
    handle: ServerHandle,
    _database: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits.
        drop(self.handle.stop(false));
    }
}

/// Settings on top of the defaults (`JWT_SECRET`, a fresh database, port 0).
pub type Settings<'a> = &'a [(&'a str, &'a str)];

impl TestApp {
    /// A server trusting [`SECRET`], over the running test's backend: the
    /// in-memory adapter, or a fresh, migrated PostgreSQL database.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Like [`TestApp::spawn`] with extra settings (they win over the defaults).
    pub async fn spawn_with(settings: Settings<'_>) -> Self {
        match Backend::current() {
            Backend::Memory => {
                let storage = Storage::single(Arc::new(InMemoryRepository::new()));
                // A URL nothing listens on: were anything to connect, it would fail loudly.
                Self::start(
                    None,
                    "postgres://nobody@127.0.0.1:1/none",
                    Some(storage),
                    settings,
                )
                .await
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url().to_owned();
                Self::start(Some(database), &url, None, settings).await
            }
            Backend::PgBouncer => {
                let database = TestDatabase::create().await;
                let url = PgBouncer::shared().await.url_for(database.url());
                let pooled: Vec<(&str, &str)> = [("DATABASE_POOLER", "transaction")]
                    .into_iter()
                    .chain(settings.iter().copied())
                    .collect();
                Self::start(Some(database), &url, None, &pooled).await
            }
        }
    }

    /// A server whose database is at `url` (which may be unreachable).
    pub async fn spawn_on(url: &str, settings: Settings<'_>) -> Self {
        Self::start(None, url, None, settings).await
    }

    async fn start(
        database: Option<TestDatabase>,
        url: &str,
        storage: Option<Storage>,
        settings: Settings<'_>,
    ) -> Self {
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", url),
            ("BIND_ADDRESS", "127.0.0.1:0"),
            ("JWT_SECRET", SECRET),
            ("HTTP_WORKERS", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (key, value) in settings {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let settings = ServiceSettings::from_lookup(|key| env.get(key).cloned())
            .expect("test configuration is valid");
        let app = match storage {
            Some(storage) => Application::build_on(settings.config, storage, false).await,
            None => Application::build(settings, false).await,
        }
        .expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let admin_address = app
            .admin_address()
            .map(|admin| format!("http://127.0.0.1:{}", admin.port()));
        let handle = app.handle();
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        chat_api::auth::install_tls_provider();
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            address,
            admin_address,
            client,
            state,
            handle,
            _database: database,
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with a bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// `POST /chat/` with a JSON body.
    pub async fn create(&self, token: &str, body: Value) -> Response {
        self.request(reqwest::Method::POST, "/chat/", token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a chat titled `title` and returns its body.
    pub async fn create_chat(&self, token: &str, title: &str) -> Value {
        let response = self.create(token, json!({ "title": title })).await;
        assert_eq!(response.status(), 201, "creating {title:?}");
        response.json().await.expect("JSON body")
    }

    /// `GET` with a token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    /// `GET` with no token (operational routes).
    pub async fn get_anonymous(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Statements the server's pool has executed so far.
    pub fn statements(&self) -> u64 {
        self.state.storage.pool.statements()
    }

    /// The URL of the server's own PostgreSQL database (tests that look
    /// behind the API); panics on the in-memory backend.
    pub fn database_url(&self) -> &str {
        self._database
            .as_ref()
            .map(TestDatabase::url)
            .expect("this test runs on PostgreSQL")
    }

    /// A connection to the server's own PostgreSQL database.
    pub async fn sql(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.database_url())
            .await
            .expect("the test database answers")
    }
}

/// A plain HTTP client. reqwest is built with rustls and no provider of its
/// own (the service's JWKS client installs ring), so every client in the
/// test process needs the provider installed first.
pub fn http_client() -> Client {
    chat_api::auth::install_tls_provider();
    Client::new()
}

/// A user with a valid HS256 token.
pub struct User {
    /// The user id.
    pub id: Uuid,
    /// A token for them, valid for an hour.
    pub token: String,
}

impl User {
    /// A new user id and a token signed with [`SECRET`].
    pub fn new() -> Self {
        let id = Uuid::new_v4();
        Self {
            id,
            token: hs256(json!({ "sub": id.to_string(), "exp": now() + 3600 })),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(seconds).expect("fits")
}

/// Signs `claims` with HS256 and [`SECRET`].
pub fn hs256(claims: Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

/// Signs `claims` with `key`.
pub fn sign(alg: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("signing")
}

/// The private key in a fixture, for `alg`.
pub fn private_key(alg: Algorithm, file: &str) -> EncodingKey {
    let pem = std::fs::read(fixture(file)).expect("fixture");
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .expect("a private key")
}

/// Asserts an RFC 9457 problem with this status, and returns its body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = header(&response, "content-type");
    assert_eq!(
        content_type, "application/problem+json",
        "problem media type"
    );
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    let reason = reqwest::StatusCode::from_u16(status)
        .expect("status")
        .canonical_reason()
        .expect("reason");
    assert_eq!(body["title"], reason);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail is present: {body}"
    );
    body
}

/// The fields named in a 422's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["field"].as_str().expect("field").to_owned())
        .collect()
}

/// A response header as text ("" when absent).
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .unwrap_or_default()
}
