//! Behind a transaction-mode pooler (the test process's PgBouncer, `pool_mode =
//! transaction`): what the service does when it was not told, and what the
//! tests over `on_every_adapter!` (`…::on_pgbouncer`) do not show.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_testing::PgBouncer;

use crate::helpers::{Backend, SECRET, TestApp, User};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-api");

#[tokio::test]
async fn a_pooler_the_service_was_not_told_about_is_named_in_the_log() {
    // A migrated database, reached through PgBouncer without DATABASE_POOLER.
    let app = TestApp::spawn().await;
    let through = PgBouncer::shared().await.url_for(app.database_url());
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &through)
        .env("RUN_MIGRATIONS", "false")
        .env("JWT_SECRET", SECRET)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            collected.lock().expect("lines").push(line);
        }
    });
    let log = || lines.lock().expect("lines").join("\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    let address = loop {
        let found = log()
            .lines()
            .find(|line| line.contains("\"listening\""))
            .and_then(|line| line.split("\"address\":\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
        if let Some(address) = found {
            break address;
        }
        assert!(Instant::now() < deadline, "no listening line:\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = crate::helpers::http_client();
    let user = User::new();
    let mut named = false;
    while !named && Instant::now() < deadline {
        let response = client
            .get(format!("http://{address}/chat/"))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request");
        assert_ne!(response.status(), 200, "cannot work unconfigured");
        let _ = client
            .get(format!("http://{address}/health/ready"))
            .send()
            .await;
        named = log().contains("DATABASE_POOLER=transaction");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log();
    assert!(named, "the log names DATABASE_POOLER:\n{log}");
    let hints = log
        .lines()
        .filter(|line| line.contains("DATABASE_POOLER=transaction"))
        .collect::<Vec<_>>();
    assert_eq!(hints.len(), 1, "logged once: {hints:#?}");
    assert!(hints[0].contains("ERROR"), "an error: {}", hints[0]);
}

/// Concurrent writers through PgBouncer: statements of different clients share
/// server connections, and none is confused with another's.
#[tokio::test]
async fn concurrent_requests_through_pgbouncer_never_mix_statements() {
    Backend::PgBouncer
        .run(async {
            let app = TestApp::spawn_with(&[("DATABASE_MAX_CONNECTIONS", "8")]).await;
            let users: Vec<User> = (0..4).map(|_| User::new()).collect();
            let app = &app;
            let writes = users.iter().flat_map(|user| {
                (0..10).map(move |i| async move {
                    let chat = app.create_chat(&user.token, &format!("t{i}")).await;
                    let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
                    let read = app.get(&path, &user.token).await;
                    assert_eq!(read.status(), 200);
                })
            });
            futures_util::future::join_all(writes).await;
            for user in &users {
                let list = app.get("/chat/?limit=100", &user.token).await;
                assert_eq!(crate::helpers::header(&list, "x-total-count"), "10");
            }
        })
        .await;
}
