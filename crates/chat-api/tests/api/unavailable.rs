//! The database away: a 503 with `Retry-After`, fast, never a hang; and the
//! service recovers by itself when the database returns.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_testing::TestDatabase;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::{TestApp, User, header, problem};

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forward both ways.
    Up,
    /// Close every connection, new and open: the database refuses.
    Refuse,
    /// Keep connections open but pass nothing: the database hangs.
    Freeze,
}

/// A TCP proxy in front of PostgreSQL whose behaviour the test switches.
struct Proxy {
    port: u16,
    mode: watch::Sender<Mode>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close_connections();
    }
}

impl Proxy {
    async fn start(target: u16, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (sender, receiver) = watch::channel(mode);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *receiver.borrow() == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let task = tokio::spawn(forward(client, server, receiver.clone()));
                open.lock().expect("lock").push(task);
            }
        });
        Self {
            port,
            mode: sender,
            connections,
            accept,
        }
    }

    fn set(&self, mode: Mode) {
        if mode == Mode::Refuse {
            self.close_connections();
        }
        self.mode.send_replace(mode);
    }

    fn close_connections(&self) {
        for task in self.connections.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

async fn forward(client: TcpStream, server: TcpStream, mode: watch::Receiver<Mode>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, mode.clone()),
        pump(server_read, client_write, mode),
    );
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        // While frozen, hold the bytes: the peer waits forever.
        while *mode.borrow_and_update() == Mode::Freeze {
            if mode.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

fn server_port() -> u16 {
    // The local server, or TEST_DATABASE_URL's when set.
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .and_then(|url| url::Url::parse(&url).ok())
        .and_then(|url| url.port())
        .unwrap_or(5432)
}

async fn assert_503_within(app: &TestApp, path: &str, token: Option<&str>, bound: Duration) {
    let started = Instant::now();
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let elapsed = started.elapsed();
    assert_eq!(header(&response, "retry-after"), "2", "{path}");
    let body = problem(response, 503).await;
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "generic detail: {body}"
    );
    assert!(
        elapsed < bound,
        "{path} answered in {elapsed:?}, over {bound:?}"
    );
}

/// Polls `/health/ready` until it answers 200, failing after `within`.
async fn wait_until_ready(app: &TestApp, within: Duration, since: &str) {
    let deadline = Instant::now() + within;
    loop {
        let ready = app.get_anonymous("/health/ready").await;
        if ready.status() == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready {within:?} after {since}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_database_refusing_connections_gives_503s_within_two_seconds() {
    // Bound and dropped: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let app = TestApp::spawn_on(&format!("postgres://postgres@127.0.0.1:{port}/chat"), &[]).await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
    assert_eq!(app.get_anonymous("/health/live").await.status(), 200);
    // Still a 401 first without a token: the order of checks holds while degraded.
    problem(app.get_anonymous("/chat/").await, 401).await;
}

#[tokio::test]
async fn a_database_that_never_answers_gives_503s_not_hangs() {
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::spawn_on(
        &format!("postgres://postgres@127.0.0.1:{port}/chat"),
        &[("RUN_MIGRATIONS", "false")],
    )
    .await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(5)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
    holder.abort();
}

#[tokio::test]
async fn a_database_that_stops_answering_mid_flight_gives_503s_within_five_seconds() {
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(server_port(), Mode::Up).await;
    let app = TestApp::spawn_on(&proxy.url(database.name()), &[]).await;
    let user = User::new();
    app.create_chat(&user.token, "before the freeze").await;
    proxy.set(Mode::Freeze);
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(5)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_service_recovers_by_itself_when_the_database_returns() {
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(server_port(), Mode::Refuse).await;
    // Down at start: migrations cannot run; the server serves 503s meanwhile.
    let app = TestApp::spawn_on(&proxy.url(database.name()), &[]).await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;

    proxy.set(Mode::Up);
    wait_until_ready(&app, Duration::from_secs(20), "the database returned").await;
    app.create_chat(&user.token, "after recovery").await;

    // Down again with connections in the pool, then back: no restart needed.
    proxy.set(Mode::Refuse);
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;
    proxy.set(Mode::Up);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get("/chat/", &user.token).await;
        if response.status() == 200 {
            assert_eq!(header(&response, "x-total-count"), "1");
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            Instant::now() < deadline,
            "no recovery 10 s after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = app
        .create(&user.token, json!({"title": "still fine"}))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_unmigrated_database_is_not_ready_and_says_so() {
    // Up and answering, but nobody has run the migrations (RUN_MIGRATIONS=false).
    let database = TestDatabase::create().await;
    let app = TestApp::spawn_on(database.url(), &[("RUN_MIGRATIONS", "false")]).await;
    let live = app.get_anonymous("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get_anonymous("/health/ready").await;
    assert_eq!(header(&ready, "retry-after"), "2");
    let body = problem(ready, 503).await;
    assert_eq!(
        body["detail"], "not ready: the database schema is not migrated yet",
        "{body}"
    );
    assert_503_within(
        &app,
        "/chat/",
        Some(&User::new().token),
        Duration::from_secs(2),
    )
    .await;

    // Someone runs `chat-api migrate`: the service notices by itself.
    let migrator = chat_infra::Database::connect(&chat_infra::DatabaseConfig::new(database.url()))
        .await
        .expect("connect");
    migrator.migrate().await.expect("migrate");
    wait_until_ready(&app, Duration::from_secs(10), "the migrations ran").await;
    let user = User::new();
    app.create_chat(&user.token, "after the migrations").await;
}
