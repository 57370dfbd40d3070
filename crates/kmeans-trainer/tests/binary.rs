//! The real `kmeans-trainer` binary against a fresh, migrated PostgreSQL
//! database: what it stores when the input is good, and for each kind of bad
//! input its exit code, its one line on stderr, and that nothing was stored.

use std::path::PathBuf;
use std::process::{Command, Output};

use chat_domain::{
    Chat, ChatId, ChatRepository, KmeansDataRepository, NewChat, Timestamp, Title, UserId,
};
use chat_infra::entities::kmeans_data;
use chat_infra::{Database, DatabaseConfig, SeaOrmRepository};
use chat_testing::TestDatabase;
use sea_orm::{EntityTrait, PaginatorTrait};
use uuid::Uuid;

const BAD_INPUT: i32 = 2;
const UNAVAILABLE: i32 = 3;

/// A migrated database holding one chat of one user, and a directory the
/// binary runs in (so messages name `data.csv` as written).
struct Fixture {
    database: TestDatabase,
    repository: SeaOrmRepository,
    user: UserId,
    chat: ChatId,
    dir: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Fixture {
    async fn new() -> Self {
        let database = TestDatabase::create().await;
        let db = Database::connect(&DatabaseConfig::new(database.url()))
            .await
            .expect("pool");
        db.migrate().await.expect("migrations apply");
        let repository = SeaOrmRepository::new(db);
        let user = UserId::from_uuid(Uuid::new_v4());
        let chat = Self::insert_chat(&repository, user).await;
        Self {
            database,
            repository,
            user,
            chat,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    async fn insert_chat(repository: &SeaOrmRepository, owner: UserId) -> ChatId {
        let command = NewChat {
            title: Title::parse("training data").expect("title"),
            description: None,
        };
        let chat = Chat::create(owner, command, Timestamp::now());
        repository.insert(&chat).await.expect("chat stored");
        chat.id
    }

    /// Writes `data.csv` in the run directory.
    fn csv(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("data.csv");
        std::fs::write(&path, text).expect("CSV written");
        path
    }

    /// Runs the binary with `--chat` and `--user` of the fixture, then `args`.
    async fn train(&self, args: &[&str]) -> Run {
        let chat = self.chat.to_string();
        let user = self.user.to_string();
        let mut all = vec!["--chat", &chat, "--user", &user];
        all.extend_from_slice(args);
        self.run(&all, Some(self.database.url())).await
    }

    /// Runs the binary with exactly `args`, and `DATABASE_URL` set to
    /// `database_url` (or unset).
    async fn run(&self, args: &[&str], database_url: Option<&str>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kmeans-trainer"));
        command.args(args).current_dir(self.dir.path());
        match database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let output: Output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("joined")
            .expect("the binary runs");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    /// Rows in `kmeans_data`, whoever they belong to.
    async fn stored_rows(&self) -> u64 {
        kmeans_data::Entity::find()
            .count(self.repository.database().connection())
            .await
            .expect("count")
    }

    /// Asserts the run was refused with `code` and one stderr line containing
    /// `message`, and that `kmeans_data` is still empty.
    async fn assert_refused(&self, run: &Run, code: i32, message: &str) {
        assert_eq!(run.code, Some(code), "{run:?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {run:?}");
        assert!(
            lines[0].starts_with("kmeans-trainer: ") && lines[0].contains(message),
            "expected {message:?} in {:?}",
            lines[0]
        );
        assert_eq!(run.stdout, "", "nothing on stdout when refused");
        assert_eq!(self.stored_rows().await, 0, "nothing stored");
    }
}

/// Three groups far apart: their centres are the obvious answer.
const THREE_GROUPS: &str = "\
x,y
0,0
0,2
2,0
2,2
100,100
100,102
102,100
102,102
0,100
0,102
2,100
2,102
";

#[tokio::test]
async fn stores_the_k_centroids_of_well_separated_groups() {
    let fixture = Fixture::new().await;
    fixture.csv(THREE_GROUPS);

    let run = fixture.train(&["--k", "3", "data.csv"]).await;

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, "");
    let stored = fixture
        .repository
        .list_kmeans_data(fixture.user, fixture.chat)
        .await
        .expect("listed");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].chat_id, fixture.chat);
    assert_eq!((stored[0].k(), stored[0].centroids.dimensions()), (3, 2));
    assert_eq!(
        stored[0].centroids.rows(),
        &[vec![1.0, 1.0], vec![1.0, 101.0], vec![101.0, 101.0]][..],
        "the groups' centres, sorted"
    );
    let summary = run.stdout.lines().next().expect("a summary line");
    assert!(
        summary.contains(&stored[0].id.to_string())
            && summary.contains("k=3")
            && summary.contains("12 row(s) (header skipped)"),
        "{summary}"
    );
    assert_eq!(
        run.stdout.lines().skip(1).collect::<Vec<_>>(),
        ["1,1", "1,101", "101,101"]
    );
}

#[tokio::test]
async fn the_same_seed_stores_the_same_centroids() {
    let fixture = Fixture::new().await;
    let rows: String = (0..60)
        .map(|i| format!("{},{}\n", (i * 37) % 11, (i * 53) % 17))
        .collect();
    fixture.csv(&rows);

    for _ in 0..2 {
        let run = fixture
            .train(&["--k", "4", "--seed", "7", "data.csv"])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }

    let stored = fixture
        .repository
        .list_kmeans_data(fixture.user, fixture.chat)
        .await
        .expect("listed");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].centroids, stored[1].centroids);
    assert_eq!(stored[0].k(), 4);
}

#[tokio::test]
async fn a_non_numeric_cell_is_named_by_line_and_column() {
    let fixture = Fixture::new().await;
    fixture.csv("x,y\n1,2\n3,abc\n5,6\n");
    let run = fixture.train(&["--k", "2", "data.csv"]).await;
    fixture
        .assert_refused(&run, BAD_INPUT, r#"data.csv:3:2: "abc" is not a number"#)
        .await;
}

#[tokio::test]
async fn a_ragged_row_is_named_with_its_width() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,4\n5\n");
    let run = fixture.train(&["--k", "1", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            "data.csv:3: line 3 has 1 columns, expected 2 like line 1",
        )
        .await;
}

#[tokio::test]
async fn an_empty_file_has_no_data_rows() {
    let fixture = Fixture::new().await;
    fixture.csv("");
    let run = fixture.train(&["--k", "1", "data.csv"]).await;
    fixture
        .assert_refused(&run, BAD_INPUT, "data.csv: no data rows")
        .await;
}

#[tokio::test]
async fn a_header_alone_has_no_data_rows() {
    let fixture = Fixture::new().await;
    fixture.csv("x,y\n");
    let run = fixture.train(&["--k", "1", "data.csv"]).await;
    fixture
        .assert_refused(&run, BAD_INPUT, "data.csv: no data rows")
        .await;
}

#[tokio::test]
async fn k_larger_than_the_row_count_is_refused() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,4\n5,6\n");
    let run = fixture.train(&["--k", "4", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            "--k 4 is larger than the 3 data rows of data.csv",
        )
        .await;
}

#[tokio::test]
async fn k_larger_than_the_distinct_rows_is_refused() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n1,2\n5,6\n");
    let run = fixture.train(&["--k", "3", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            "--k 3 is larger than the 2 distinct data rows of data.csv",
        )
        .await;
}

#[tokio::test]
async fn k_zero_is_refused() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n");
    let run = fixture.train(&["--k", "0", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            "invalid value '0' for '--k <K>': must be at least 1",
        )
        .await;
}

#[tokio::test]
async fn nan_is_refused_with_its_position() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\nNaN,4\n");
    let run = fixture.train(&["--k", "1", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            r#"data.csv:2:1: "NaN" is not a finite number"#,
        )
        .await;
}

#[tokio::test]
async fn infinity_is_refused_with_its_position() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,-inf\n");
    let run = fixture.train(&["--k", "1", "data.csv"]).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            r#"data.csv:2:2: "-inf" is not a finite number"#,
        )
        .await;
}

#[tokio::test]
async fn another_users_chat_is_not_found() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,4\n");
    let stranger = Uuid::new_v4().to_string();
    let chat = fixture.chat.to_string();
    let args = ["--chat", &chat, "--user", &stranger, "--k", "1", "data.csv"];
    let run = fixture.run(&args, Some(fixture.database.url())).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            &format!("chat {chat} not found for user {stranger}"),
        )
        .await;
}

#[tokio::test]
async fn a_missing_chat_is_not_found() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,4\n");
    let missing = ChatId::generate().to_string();
    let user = fixture.user.to_string();
    let args = ["--chat", &missing, "--user", &user, "--k", "1", "data.csv"];
    let run = fixture.run(&args, Some(fixture.database.url())).await;
    fixture
        .assert_refused(&run, BAD_INPUT, &format!("chat {missing} not found"))
        .await;
}

#[tokio::test]
async fn an_invalid_uuid_argument_is_a_usage_error() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n");
    let chat = fixture.chat.to_string();
    let args = [
        "--chat",
        &chat,
        "--user",
        "not-a-uuid",
        "--k",
        "1",
        "data.csv",
    ];
    let run = fixture.run(&args, Some(fixture.database.url())).await;
    fixture
        .assert_refused(
            &run,
            BAD_INPUT,
            "invalid value 'not-a-uuid' for '--user <USER_ID>': must be a UUID",
        )
        .await;
}

#[tokio::test]
async fn a_missing_database_url_is_a_usage_error() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n");
    let chat = fixture.chat.to_string();
    let user = fixture.user.to_string();
    let args = ["--chat", &chat, "--user", &user, "--k", "1", "data.csv"];
    let run = fixture.run(&args, None).await;
    fixture
        .assert_refused(&run, BAD_INPUT, "--database-url <URL>")
        .await;
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let fixture = Fixture::new().await;
    let run = fixture.train(&["--k", "1", "absent.csv"]).await;
    fixture
        .assert_refused(&run, BAD_INPUT, "absent.csv: cannot read: ")
        .await;
}

#[tokio::test]
async fn an_unreachable_database_has_its_own_exit_code() {
    let fixture = Fixture::new().await;
    fixture.csv("1,2\n3,4\n");
    let chat = fixture.chat.to_string();
    let user = fixture.user.to_string();
    let args = ["--chat", &chat, "--user", &user, "--k", "1", "data.csv"];
    // Nothing listens on port 1.
    let unreachable = "postgres://postgres:secret@127.0.0.1:1/postgres";
    let run = fixture.run(&args, Some(unreachable)).await;
    fixture
        .assert_refused(
            &run,
            UNAVAILABLE,
            "database unavailable at postgres://postgres:***@127.0.0.1:1/postgres",
        )
        .await;
    assert!(!run.stderr.contains("secret"), "the password is not shown");
}
