//! The migrations apply to an empty database, roll back completely, and apply
//! again, on PostgreSQL and on SQLite.

use std::time::Duration;

use chat_testing::{TestDatabase, TestSqlite};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const TABLES: [&str; 4] = ["users", "chats", "kmeans_data", "idempotency_keys"];

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await.expect("connect")
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("catalog query")
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .filter(|name| TABLES.contains(&name.as_str()))
        .collect()
}

/// Inserting a chat moves its owner's counter slots: the triggers exist and work.
async fn counter_works(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let (user, chat) = (uuid::Uuid::new_v4(), uuid::Uuid::now_v7());
    let now = chrono::Utc::now();
    let placeholders = |n: usize| match backend {
        DbBackend::Postgres => (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>(),
        _ => vec!["?".to_owned(); n],
    };
    let p = placeholders(4);
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO users (id, created_at) VALUES ({}, {})",
            p[0], p[1]
        ),
        [user.into(), now.into()],
    ))
    .await
    .expect("insert user");
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO chats (id, user_id, title, created_at, updated_at) VALUES ({}, {}, 'hi', {}, {})",
            p[0], p[1], p[2], p[3]
        ),
        [chat.into(), user.into(), now.into(), now.into()],
    ))
    .await
    .expect("insert chat");
    let count = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT CAST(SUM(n) AS BIGINT) AS chat_count FROM user_chat_counts WHERE user_id = {}",
                p[0]
            ),
            [user.into()],
        ))
        .await
        .expect("select")
        .expect("row")
        .try_get::<i64>("", "chat_count")
        .expect("count");
    assert_eq!(count, 1);
}

async fn up_down_up(url: &str) {
    let db = connect(url).await;
    Migrator::up(&db, None).await.expect("up");
    assert_eq!(
        tables(&db).await,
        ["chats", "idempotency_keys", "kmeans_data", "users"]
    );
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .expect("status")
            .is_empty()
    );
    counter_works(&db).await;

    Migrator::down(&db, None).await.expect("down");
    assert!(tables(&db).await.is_empty(), "down removes every table");

    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(
        tables(&db).await,
        ["chats", "idempotency_keys", "kmeans_data", "users"]
    );
    counter_works(&db).await;
    db.close().await.expect("close");
}

#[tokio::test]
async fn postgres_up_down_up() {
    let database = TestDatabase::create().await;
    up_down_up(database.url()).await;
}

#[tokio::test]
async fn sqlite_up_down_up() {
    let database = TestSqlite::create();
    up_down_up(database.url()).await;
}
