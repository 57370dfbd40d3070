//! Paging: newest first, `X-Total-Count`, `Link` (RFC 8288), and cursors that
//! never skip or repeat an item that existed throughout a walk.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, User, error_fields, header, problem};

async fn seed(app: &TestApp, user: &User, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        ids.push(
            app.create_chat(&user.token, &format!("chat {i}")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    ids.reverse(); // newest first
    ids
}

fn ids(page: &Value) -> Vec<String> {
    page.as_array()
        .expect("array")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

on_every_adapter! {
    async fn a_skip_walk_over_25_chats_sees_each_once_with_links() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let expected = seed(&app, &user, 25).await;
        let mut seen = Vec::new();
        let expectations = [
            (0, "</chat/?skip=10&limit=10>; rel=\"next\""),
            (
                10,
                "</chat/?skip=20&limit=10>; rel=\"next\", </chat/?skip=0&limit=10>; rel=\"prev\"",
            ),
            (20, "</chat/?skip=10&limit=10>; rel=\"prev\""),
        ];
        for (skip, link) in expectations {
            let response = app
                .get(&format!("/chat/?skip={skip}&limit=10"), &user.token)
                .await;
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "x-total-count"), "25");
            assert_eq!(header(&response, "link"), link, "skip={skip}");
            let full = skip < 20;
            assert_eq!(
                !header(&response, "x-next-cursor").is_empty(),
                full,
                "X-Next-Cursor on full pages"
            );
            seen.extend(ids(&response.json().await.expect("JSON")));
        }
        assert_eq!(seen, expected);
    }
}

on_every_adapter! {
    async fn links_keep_the_limit_and_prev_never_goes_below_zero() {
        let app = TestApp::spawn().await;
        let user = User::new();
        seed(&app, &user, 5).await;
        let response = app.get("/chat/?skip=2&limit=3", &user.token).await;
        assert_eq!(
            header(&response, "link"),
            "</chat/?skip=0&limit=3>; rel=\"prev\""
        );
        let response = app.get("/chat/?skip=1", &user.token).await;
        assert_eq!(
            header(&response, "link"),
            "</chat/?skip=0&limit=10>; rel=\"prev\""
        );
    }
}

on_every_adapter! {
    async fn a_skip_past_the_end_is_an_empty_page() {
        let app = TestApp::spawn().await;
        let user = User::new();
        seed(&app, &user, 3).await;
        let response = app.get("/chat/?skip=50&limit=10", &user.token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-total-count"), "3");
        assert_eq!(
            header(&response, "link"),
            "</chat/?skip=40&limit=10>; rel=\"prev\""
        );
        assert_eq!(
            response.json::<Value>().await.expect("JSON"),
            Value::Array(vec![])
        );
    }
}

on_every_adapter! {
    async fn a_cursor_walk_over_25_chats_sees_each_once() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let expected = seed(&app, &user, 25).await;
        let mut seen = Vec::new();
        let mut path = "/chat/?limit=10".to_owned();
        let mut pages = 0;
        loop {
            let response = app.get(&path, &user.token).await;
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "x-total-count"), "25");
            let cursor = header(&response, "x-next-cursor");
            let link = header(&response, "link");
            seen.extend(ids(&response.json().await.expect("JSON")));
            pages += 1;
            if cursor.is_empty() {
                assert_eq!(link, "", "no next link on the last page");
                break;
            }
            if pages > 1 {
                assert_eq!(
                    link,
                    format!("</chat/?limit=10&cursor={cursor}>; rel=\"next\"")
                );
            }
            path = format!("/chat/?limit=10&cursor={cursor}");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, expected);
    }
}

on_every_adapter! {
    async fn in_cursor_mode_next_exists_only_when_more_items_follow() {
        let app = TestApp::spawn().await;
        let user = User::new();
        seed(&app, &user, 4).await;
        let first = app.get("/chat/?limit=2", &user.token).await;
        let cursor = header(&first, "x-next-cursor");
        let second = app
            .get(&format!("/chat/?limit=2&cursor={cursor}"), &user.token)
            .await;
        assert_eq!(
            second
                .json::<Value>()
                .await
                .expect("JSON")
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let second = app
            .get(&format!("/chat/?limit=2&cursor={cursor}"), &user.token)
            .await;
        assert_eq!(
            header(&second, "x-next-cursor"),
            "",
            "a full last page has no next cursor"
        );
        assert_eq!(header(&second, "link"), "");
    }
}

on_every_adapter! {
    async fn a_cursor_walk_survives_creates_and_deletes_during_the_walk() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let originals = seed(&app, &user, 12).await;
        let first = app.get("/chat/?limit=4", &user.token).await;
        let mut cursor = header(&first, "x-next-cursor");
        let mut seen = ids(&first.json().await.expect("JSON"));
        // During the walk: two new chats (newest, so before the cursor), the item the
        // cursor points at and one not yet seen are deleted.
        app.create_chat(&user.token, "new 1").await;
        let deleted = [seen[3].clone(), originals[8].clone()];
        for id in &deleted {
            let response = app
                .request(Method::DELETE, &format!("/chat/{id}"), &user.token)
                .send()
                .await;
            assert_eq!(response.expect("request").status(), 204);
        }
        app.create_chat(&user.token, "new 2").await;
        while !cursor.is_empty() {
            let response = app
                .get(&format!("/chat/?limit=4&cursor={cursor}"), &user.token)
                .await;
            cursor = header(&response, "x-next-cursor");
            seen.extend(ids(&response.json().await.expect("JSON")));
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
        for id in originals.iter().filter(|id| !deleted.contains(id)) {
            assert!(
                unique.contains(id),
                "{id} existed throughout and was skipped"
            );
        }
    }
}

on_every_adapter! {
    async fn cursor_and_skip_together_or_a_foreign_cursor_are_422() {
        let app = TestApp::spawn().await;
        let user = User::new();
        seed(&app, &user, 3).await;
        let cursor = header(
            &app.get("/chat/?limit=1", &user.token).await,
            "x-next-cursor",
        );
        let body = problem(
            app.get(&format!("/chat/?skip=0&cursor={cursor}"), &user.token)
                .await,
            422,
        )
        .await;
        assert!(error_fields(&body).contains(&"cursor".to_owned()));
        for bad in ["garbage", "AAAA", "%00", "eyJ0eXAiOiJKV1QifQ"] {
            let body = problem(
                app.get(&format!("/chat/?cursor={bad}"), &user.token).await,
                422,
            )
            .await;
            assert_eq!(error_fields(&body), ["cursor"], "{bad}");
        }
        problem(app.get("/chat/?cursor=", &user.token).await, 422).await;
    }
}

on_every_adapter! {
    async fn another_users_cursor_shows_only_your_own_chats() {
        let app = TestApp::spawn().await;
        let (alice, bob) = (User::new(), User::new());
        seed(&app, &alice, 3).await;
        let bobs = seed(&app, &bob, 2).await;
        let cursor = header(
            &app.get("/chat/?limit=1", &alice.token).await,
            "x-next-cursor",
        );
        let page = app
            .get(&format!("/chat/?cursor={cursor}"), &bob.token)
            .await;
        let listed = ids(&page.json().await.expect("JSON"));
        assert!(listed.iter().all(|id| bobs.contains(id)));
    }
}

/// A cursor in the server's layout (version 1, microseconds since the epoch,
/// chat id) for any instant, including ones the server would never issue.
fn cursor_at(micros: i64) -> String {
    use base64::Engine;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&micros.to_be_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

on_every_adapter! {
    async fn a_cursor_at_an_instant_the_database_cannot_store_is_422_and_harms_nothing() {
        let app = TestApp::spawn().await;
        let user = User::new();
        seed(&app, &user, 2).await;
        // Years before 1 and after 9999, down to the ends of the 64-bit range.
        let year_0 = -62_135_596_800_000_000 - 1;
        let year_10000 = 253_402_300_800_000_000;
        for micros in [year_0, -210_866_803_200_000_000 - 1, year_10000, i64::MIN, i64::MAX] {
            let body = problem(
                app.get(&format!("/chat/?cursor={}", cursor_at(micros)), &user.token)
                    .await,
                422,
            )
            .await;
            assert_eq!(error_fields(&body), ["cursor"], "{micros}");
        }
        // The ends of the kept range are positions like any other.
        let after_last = app
            .get(
                &format!("/chat/?cursor={}", cursor_at(253_402_300_799_999_999)),
                &user.token,
            )
            .await;
        assert_eq!(after_last.status(), 200);
        assert_eq!(ids(&after_last.json().await.expect("JSON")).len(), 2);
        let before_first = app
            .get(
                &format!("/chat/?cursor={}", cursor_at(-62_135_596_800_000_000)),
                &user.token,
            )
            .await;
        assert_eq!(before_first.status(), 200);
        assert!(ids(&before_first.json().await.expect("JSON")).is_empty());
        // Nothing was thrown away on the way: the next requests are served as usual.
        for _ in 0..4 {
            let page = app.get("/chat/", &user.token).await;
            assert_eq!(page.status(), 200);
            assert_eq!(header(&page, "x-total-count"), "2");
        }
    }
}
