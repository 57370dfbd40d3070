//! A database that refuses connections, or accepts them and never answers, makes
//! repository calls fail fast as `Unavailable` (the HTTP layer's 503), never hang.

use std::time::{Duration, Instant};

use chat_domain::{ChatId, ChatRepository, RepositoryError, UserId};
use chat_infra::{Database, DatabaseConfig, SeaOrmRepository};

fn config(url: &str) -> DatabaseConfig {
    let mut config = DatabaseConfig::new(url);
    config.acquire_timeout = Duration::from_millis(500);
    config.query_timeout = Duration::from_secs(2);
    config
}

async fn find_fails_fast(url: &str) {
    let db = Database::connect(&config(url))
        .await
        .expect("a lazy pool builds without a server");
    let repo = SeaOrmRepository::new(db.clone());
    let started = Instant::now();
    let result = repo
        .find(UserId::from_uuid(uuid::Uuid::new_v4()), ChatId::generate())
        .await;
    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        db.ping(Duration::from_millis(300)).await,
        Err(RepositoryError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_refusing_server_is_unavailable() {
    // Bind then drop: the port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    find_fails_fast(&format!("postgres://postgres@127.0.0.1:{port}/chat")).await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accept every connection and keep it open without a word.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    find_fails_fast(&format!("postgres://postgres@127.0.0.1:{port}/chat")).await;
    silent.abort();
}

#[tokio::test]
async fn a_live_server_answers_the_readiness_ping() {
    let database = chat_testing::TestDatabase::create().await;
    let db = Database::connect(&config(database.url()))
        .await
        .expect("pool");
    db.ping(Duration::from_secs(1)).await.expect("ping");
    db.ping(Duration::from_secs(1))
        .await
        .expect("ping again, same connection");
    // The probe has a connection of its own: none of the request pool's.
    let status = db.pool_status();
    assert_eq!(status.size, 0, "{status:?}");
    assert_eq!(status.max, DatabaseConfig::new("x").max_connections);
    db.close().await;
}

#[tokio::test]
async fn a_statement_cut_short_by_the_timeout_does_not_poison_the_pool() {
    use chat_domain::{Chat, ChatChanges, ChatPatch, ExpectedVersion, NewChat, Timestamp, Title};
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let database = chat_testing::TestDatabase::create().await;
    let mut settings = config(database.url());
    settings.max_connections = 1; // the interrupted connection is the only one
    settings.query_timeout = Duration::from_millis(500);
    // Migrate first with a pool of ordinary timeouts: four migrations need not
    // fit in the 500 ms this test gives each statement on a loaded machine.
    let setup = Database::connect(&DatabaseConfig::new(database.url()))
        .await
        .expect("pool");
    setup.migrate().await.expect("migrations");
    setup.close().await;
    let db = Database::connect(&settings).await.expect("pool");
    let repo = SeaOrmRepository::new(db.clone());
    let owner = UserId::from_uuid(uuid::Uuid::new_v4());
    let title = |text: &str| Title::parse(text).expect("valid");
    let chat = Chat::create(
        owner,
        NewChat {
            title: title("before"),
            description: None,
        },
        Timestamp::now(),
    );
    repo.insert(&chat).await.expect("insert");

    // Another client holds the row, so our UPDATE waits past the timeout.
    let other = sea_orm::Database::connect(database.url())
        .await
        .expect("connect");
    let lock = other.begin().await.expect("begin");
    lock.execute_unprepared(&format!(
        "SELECT 1 FROM chats WHERE id = '{}' FOR UPDATE",
        chat.id
    ))
    .await
    .expect("lock");
    let changes = ChatChanges::from(ChatPatch {
        title: Some(title("blocked")),
        ..ChatPatch::default()
    });
    let started = Instant::now();
    let result = repo
        .update(
            owner,
            chat.id,
            &changes,
            &ExpectedVersion::Any,
            Timestamp::now(),
        )
        .await;
    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    lock.rollback().await.expect("release");

    // The only pooled connection was mid-statement: it is replaced, never reused
    // with an unread answer waiting on it; and the server gave up on the UPDATE.
    for _ in 0..3 {
        let read = repo
            .find(owner, chat.id)
            .await
            .expect("a clean read")
            .expect("present");
        assert_eq!(read, chat);
    }
}
