//! Migration 000003 moves each user's chat count from `users.chat_count` to the
//! counter slots of `user_chat_counts`, on a database that already holds chats,
//! and back again, without losing a chat from any total.

use std::time::Duration;

use chat_testing::{TestDatabase, TestSqlite};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use uuid::Uuid;

/// Migrations 000001 and 000002: the single-row counter.
const ROW_COUNTER: u32 = 2;

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await.expect("connect")
}

/// `$1`, `$2`… for PostgreSQL; SQLite spells numbered parameters `?1`, `?2`….
fn statement(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute_raw(statement(db, sql, values))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    db.query_one_raw(statement(db, sql, values))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .expect("one row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

async fn add_user(db: &DatabaseConnection) -> Uuid {
    let user = Uuid::new_v4();
    execute(
        db,
        "INSERT INTO users (id, created_at) VALUES ($1, $2)",
        vec![user.into(), chrono::Utc::now().into()],
    )
    .await;
    user
}

async fn add_chats(db: &DatabaseConnection, user: Uuid, how_many: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..how_many {
        let (id, now) = (Uuid::now_v7(), chrono::Utc::now());
        execute(
            db,
            "INSERT INTO chats (id, user_id, title, created_at, updated_at) VALUES ($1, $2, 'hi', $3, $4)",
            vec![id.into(), user.into(), now.into(), now.into()],
        )
        .await;
        ids.push(id);
    }
    ids
}

async fn delete_chat(db: &DatabaseConnection, id: Uuid) {
    execute(db, "DELETE FROM chats WHERE id = $1", vec![id.into()]).await;
}

async fn chats_of(db: &DatabaseConnection, user: Uuid) -> i64 {
    scalar(
        db,
        "SELECT count(*) FROM chats WHERE user_id = $1",
        vec![user.into()],
    )
    .await
}

/// The total the list reads after migration 000003.
async fn slot_total(db: &DatabaseConnection, user: Uuid) -> i64 {
    scalar(
        db,
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM user_chat_counts WHERE user_id = $1",
        vec![user.into()],
    )
    .await
}

/// The total the list read before migration 000003.
async fn row_total(db: &DatabaseConnection, user: Uuid) -> i64 {
    scalar(
        db,
        "SELECT chat_count FROM users WHERE id = $1",
        vec![user.into()],
    )
    .await
}

async fn has_chat_count_column(db: &DatabaseConnection) -> bool {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'users' AND column_name = 'chat_count'"
        }
        _ => "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'chat_count'",
    };
    scalar(db, sql, vec![]).await == 1
}

async fn slots_up_down_up(url: &str) {
    let db = connect(url).await;
    Migrator::up(&db, Some(ROW_COUNTER))
        .await
        .expect("up to the row counter");

    // Chats written under the old counter, one of them deleted again; one user
    // has none; one user's counter has drifted (as after a bulk load with the
    // triggers off) and must come out right.
    let (busy, idle, drifted) = (
        add_user(&db).await,
        add_user(&db).await,
        add_user(&db).await,
    );
    let busy_chats = add_chats(&db, busy, 7).await;
    delete_chat(&db, busy_chats[0]).await;
    add_chats(&db, drifted, 3).await;
    execute(
        &db,
        "UPDATE users SET chat_count = 100 WHERE id = $1",
        vec![drifted.into()],
    )
    .await;
    assert_eq!(row_total(&db, busy).await, 6);

    // Exactly migration 000003: later migrations are not this test's subject,
    // and "down by one" below must undo 000003 itself.
    Migrator::up(&db, Some(1)).await.expect("up to the slots");
    assert!(
        !has_chat_count_column(&db).await,
        "users.chat_count is gone"
    );
    for user in [busy, idle, drifted] {
        assert_eq!(slot_total(&db, user).await, chats_of(&db, user).await);
    }
    assert_eq!(slot_total(&db, busy).await, 6);
    assert_eq!(slot_total(&db, idle).await, 0);
    assert_eq!(slot_total(&db, drifted).await, 3);

    // The new triggers count writes made after the backfill.
    let later = add_chats(&db, idle, 2).await;
    delete_chat(&db, busy_chats[1]).await;
    assert_eq!(slot_total(&db, idle).await, 2);
    assert_eq!(slot_total(&db, busy).await, 5);

    Migrator::down(&db, Some(1))
        .await
        .expect("down to the row counter");
    assert!(has_chat_count_column(&db).await, "users.chat_count is back");
    assert_eq!(row_total(&db, busy).await, 5);
    assert_eq!(row_total(&db, idle).await, 2);
    assert_eq!(row_total(&db, drifted).await, 3);
    // And the old triggers maintain it again.
    delete_chat(&db, later[0]).await;
    add_chats(&db, drifted, 1).await;
    assert_eq!(row_total(&db, idle).await, 1);
    assert_eq!(row_total(&db, drifted).await, 4);

    Migrator::up(&db, Some(1))
        .await
        .expect("up to the slots again");
    assert_eq!(slot_total(&db, busy).await, 5);
    assert_eq!(slot_total(&db, idle).await, 1);
    assert_eq!(slot_total(&db, drifted).await, 4);
    delete_chat(&db, later[1]).await;
    assert_eq!(slot_total(&db, idle).await, 0);
    db.close().await.expect("close");
}

#[tokio::test]
async fn postgres_counter_slots_up_down_up_with_chats() {
    let database = TestDatabase::create().await;
    slots_up_down_up(database.url()).await;
}

#[tokio::test]
async fn sqlite_counter_slots_up_down_up_with_chats() {
    let database = TestSqlite::create();
    slots_up_down_up(database.url()).await;
}
