//! `ADMIN_BIND_ADDRESS`: `/metrics` moves to the admin address (the public one
//! answers it 404), the health probes answer on both, and nothing else is
//! served on the admin address.

use crate::helpers::{TestApp, User, problem};

on_every_adapter! {
    async fn with_an_admin_address_metrics_are_served_there_only() {
        let app = TestApp::spawn_with(&[("ADMIN_BIND_ADDRESS", "127.0.0.1:0")]).await;
        let admin = app.admin_address.clone().expect("an admin listener");
        let user = User::new();
        app.create_chat(&user.token, "counted").await;

        problem(app.get_anonymous("/metrics").await, 404).await;
        let scraped = app
            .client
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(scraped.status(), 200);
        let text = scraped.text().await.expect("text");
        assert!(text.contains("db_pool_connections_max"), "{text}");
        assert!(text.contains("route=\"/chat/\""), "public requests are counted: {text}");

        for probe in ["/health/live", "/health/ready"] {
            assert_eq!(app.get_anonymous(probe).await.status(), 200, "public {probe}");
            let on_admin = app
                .client
                .get(format!("{admin}{probe}"))
                .send()
                .await
                .expect("probe");
            assert_eq!(on_admin.status(), 200, "admin {probe}");
        }
        // The API itself is not on the admin address.
        let chats = app
            .client
            .get(format!("{admin}/chat/"))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request");
        problem(chats, 404).await;
    }
}

on_every_adapter! {
    async fn without_an_admin_address_metrics_stay_on_the_public_one() {
        let app = TestApp::spawn().await;
        assert!(app.admin_address.is_none());
        assert_eq!(app.get_anonymous("/metrics").await.status(), 200);
    }
}
