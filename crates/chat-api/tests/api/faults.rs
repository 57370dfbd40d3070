//! Network faults between the service and PostgreSQL, injected by a TCP proxy
//! (`chat_testing::FaultProxy`): added latency, connections reset in the
//! middle of a statement, a black hole, a refusing server. During each fault
//! every request is answered in time (a success or a 503, never a 500 or a
//! hang); after healing the service answers 200 again within 5 s without a
//! restart; and no write a client saw acknowledged is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_testing::{Fault, FaultProxy, TestDatabase};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, header};

/// The longest a request may take while the database misbehaves: the
/// contract's 5 s for a database that never answers, plus scheduling slack.
const ANSWER_BOUND: Duration = Duration::from_millis(5_500);

/// What the clients were told about each chat they wrote.
#[derive(Debug, Default)]
struct Acknowledged {
    /// Chats whose `POST` got a 201, by id.
    created: Vec<String>,
    /// Chats whose `PATCH` to this title got a 200.
    patched: HashMap<String, String>,
    /// Chats whose `DELETE` got a 204.
    deleted: Vec<String>,
    /// Chats whose `PATCH` got a 503: renamed or not, nobody knows.
    maybe_patched: Vec<String>,
    /// Chats whose `DELETE` got a 503: deleted or not, nobody knows.
    maybe_deleted: Vec<String>,
    /// Every status seen, with how long it took.
    answers: Vec<(u16, Duration)>,
}

/// A server over `proxy` in front of a fresh database.
async fn server_behind(proxy: &FaultProxy, database: &TestDatabase) -> TestApp {
    TestApp::spawn_on(&proxy.url_for(database.url()), &[]).await
}

/// One client's loop until `stop`: create a chat, rename it, delete every
/// third; a step that is not acknowledged ends that chat's story (its state
/// is then unknown to the client, and to the checks).
async fn write_until(
    app: Arc<TestApp>,
    user: Arc<User>,
    stop: Instant,
    seen: Arc<Mutex<Acknowledged>>,
) {
    let mut round = 0u32;
    while Instant::now() < stop {
        round += 1;
        let Some(created) = step(
            &app,
            &user,
            Method::POST,
            "/chat/",
            json!({"title": format!("chat {round}")}),
            &seen,
        )
        .await
        else {
            continue;
        };
        let id = created["id"].as_str().expect("id").to_owned();
        seen.lock().expect("lock").created.push(id.clone());
        let title = format!("renamed {round}");
        let path = format!("/chat/{id}");
        if step(
            &app,
            &user,
            Method::PATCH,
            &path,
            json!({ "title": title }),
            &seen,
        )
        .await
        .is_none()
        {
            seen.lock().expect("lock").maybe_patched.push(id);
            continue;
        }
        seen.lock().expect("lock").patched.insert(id.clone(), title);
        if round.is_multiple_of(3) {
            let deleted = step(&app, &user, Method::DELETE, &path, Value::Null, &seen).await;
            let mut seen = seen.lock().expect("lock");
            match deleted {
                Some(_) => seen.deleted.push(id),
                None => seen.maybe_deleted.push(id),
            }
        }
    }
}

/// One request: `Some(body)` when it succeeded, `None` for a 503. Anything
/// else, or an answer later than [`ANSWER_BOUND`], fails the test.
async fn step(
    app: &TestApp,
    user: &User,
    method: Method,
    path: &str,
    body: Value,
    seen: &Mutex<Acknowledged>,
) -> Option<Value> {
    let started = Instant::now();
    let mut request = app.request(method.clone(), path, &user.token);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let took = started.elapsed();
    let status = response.status().as_u16();
    seen.lock().expect("lock").answers.push((status, took));
    assert!(took < ANSWER_BOUND, "{method} {path} took {took:?}");
    match status {
        200 | 201 => Some(response.json().await.expect("JSON")),
        204 => Some(Value::Null),
        503 => {
            assert!(
                !header(&response, "retry-after").is_empty(),
                "{method} {path}: a 503 says when to retry"
            );
            None
        }
        other => panic!(
            "{method} {path} answered {other}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// Every acknowledged write is in the database, read directly (not through
/// the proxy).
async fn assert_nothing_acknowledged_was_lost(database: &TestDatabase, seen: &Acknowledged) {
    let sql = sea_orm::Database::connect(database.url())
        .await
        .expect("the database answers");
    let rows = sql
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id::text, title FROM chats",
        ))
        .await
        .expect("chats");
    let stored: HashMap<String, String> = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).expect("id"),
                row.try_get_by_index::<String>(1).expect("title"),
            )
        })
        .collect();
    for id in &seen.created {
        if seen.deleted.contains(id) {
            assert!(!stored.contains_key(id), "deleted chat {id} is back");
            continue;
        }
        // A DELETE answered 503 may have committed (its statement reached the
        // server): the chat may be gone, but if it is there it is intact.
        let Some(title) = stored.get(id) else {
            assert!(
                seen.maybe_deleted.contains(id),
                "acknowledged chat {id} was lost"
            );
            continue;
        };
        if let Some(renamed) = seen.patched.get(id) {
            assert_eq!(title, renamed, "acknowledged rename of {id} was lost");
        } else if !seen.maybe_patched.contains(id) {
            assert!(title.starts_with("chat "), "{id} has title {title:?}");
        }
    }
}

/// `GET /chat/` and `POST /chat/` succeed again within 5 s of healing.
async fn assert_recovers_within_five_seconds(app: &TestApp, user: &User) {
    let healed = Instant::now();
    loop {
        let listed = app.get("/chat/", &user.token).await.status();
        let created = app
            .create(&user.token, json!({"title": "after healing"}))
            .await
            .status();
        if listed == 200 && created == 201 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(5),
            "still {listed} / {created} {:?} after healing",
            healed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two clients write before, during and after `fault`; then the checks.
/// Returns what they saw, for fault-specific assertions.
async fn writes_survive(fault: Fault, lasting: Duration) -> Acknowledged {
    let database = TestDatabase::create().await;
    let proxy = FaultProxy::start().await;
    let app = Arc::new(server_behind(&proxy, &database).await);
    let user = Arc::new(User::new());
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    // Writers run across the whole fault and a little beyond it.
    let stop = Instant::now() + Duration::from_millis(500) + lasting;
    let writers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(write_until(
                Arc::clone(&app),
                Arc::clone(&user),
                stop,
                Arc::clone(&seen),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(fault);
    tokio::time::sleep(lasting).await;
    proxy.heal();
    for writer in writers {
        writer.await.expect("a writer panicked");
    }
    assert_recovers_within_five_seconds(&app, &user).await;
    let seen = Arc::into_inner(seen)
        .expect("writers are done")
        .into_inner()
        .expect("lock");
    assert!(!seen.created.is_empty(), "some writes were acknowledged");
    assert_nothing_acknowledged_was_lost(&database, &seen).await;
    seen
}

#[tokio::test]
async fn added_latency_slows_requests_and_fails_none() {
    let seen = writes_survive(
        Fault::Latency(Duration::from_millis(40)),
        Duration::from_secs(1),
    )
    .await;
    let failed: Vec<_> = seen
        .answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .collect();
    assert!(
        failed.is_empty(),
        "40 ms of latency failed requests: {failed:?}"
    );
    assert!(
        seen.answers
            .iter()
            .any(|(_, took)| *took >= Duration::from_millis(80)),
        "the latency was felt: {:?}",
        seen.answers
    );
}

impl Acknowledged {
    /// The fault was felt (some 503s), and every 503 came within `bound`.
    fn assert_503s_within(&self, bound: Duration) {
        assert!(
            self.answers.iter().any(|(status, _)| *status == 503),
            "the fault was felt: {:?}",
            self.answers
        );
        assert!(
            self.answers
                .iter()
                .all(|(status, took)| *status != 503 || *took < bound),
            "a 503 later than {bound:?}: {:?}",
            self.answers
        );
    }
}

#[tokio::test]
async fn connections_reset_mid_statement_lose_no_acknowledged_write() {
    let seen = writes_survive(Fault::Reset, Duration::from_millis(1_500)).await;
    // A reset is noticed at once: no request waits for a timeout.
    seen.assert_503s_within(Duration::from_secs(2));
}

#[tokio::test]
async fn a_black_hole_gives_503s_within_five_seconds_and_loses_no_acknowledged_write() {
    // Longer than the request budget (4 s): the requests caught in it time out.
    let seen = writes_survive(Fault::BlackHole, Duration::from_millis(4_500)).await;
    seen.assert_503s_within(ANSWER_BOUND);
}

#[tokio::test]
async fn a_refusing_server_gives_503s_within_two_seconds_and_loses_no_acknowledged_write() {
    let seen = writes_survive(Fault::Refuse, Duration::from_millis(1_500)).await;
    seen.assert_503s_within(Duration::from_secs(2));
}

#[tokio::test]
async fn readiness_turns_503_within_two_seconds_in_a_black_hole_and_back_after_healing() {
    let database = TestDatabase::create().await;
    let proxy = FaultProxy::start().await;
    let app = server_behind(&proxy, &database).await;
    assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);
    proxy.set(Fault::BlackHole);
    let started = Instant::now();
    let ready = app.get_anonymous("/health/ready").await;
    assert_eq!(ready.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    proxy.heal();
    let healed = Instant::now();
    while app.get_anonymous("/health/ready").await.status() != 200 {
        assert!(
            healed.elapsed() < Duration::from_secs(5),
            "not ready 5 s after healing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
