//! Authentication: every `/chat` route needs a valid bearer token; every
//! rejection is a 401 with an RFC 6750 challenge and a problem saying why.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, User, fixture, header, hs256, now, private_key, problem, sign};

async fn rejected(app: &TestApp, token: &str) -> (String, String) {
    let response = app.get("/chat/", token).await;
    let challenge = header(&response, "www-authenticate");
    let body = problem(response, 401).await;
    (
        challenge,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

fn valid_claims() -> serde_json::Value {
    json!({ "sub": Uuid::new_v4().to_string(), "exp": now() + 600 })
}

on_every_adapter! {
    async fn every_chat_route_needs_a_token() {
        let app = TestApp::spawn().await;
        let id = Uuid::new_v4();
        for (method, path) in [
            ("GET", "/chat/".to_owned()),
            ("GET", "/chat".to_owned()),
            ("POST", "/chat/".to_owned()),
            ("GET", format!("/chat/{id}")),
            ("PUT", format!("/chat/{id}")),
            ("PATCH", format!("/chat/{id}")),
            ("DELETE", format!("/chat/{id}")),
        ] {
            let response = app
                .client
                .request(method.parse().expect("method"), app.url(&path))
                .json(&json!({"title": "x"}))
                .send()
                .await
                .expect("request");
            assert_eq!(
                header(&response, "www-authenticate"),
                "Bearer",
                "{method} {path}"
            );
            let body = problem(response, 401).await;
            assert!(
                body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("missing")),
                "{body}"
            );
        }
    }
}

on_every_adapter! {
    async fn another_scheme_is_a_plain_bearer_challenge() {
        let app = TestApp::spawn().await;
        let response = app
            .client
            .get(app.url("/chat/"))
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await;
        let response = response.expect("request");
        assert_eq!(header(&response, "www-authenticate"), "Bearer");
        problem(response, 401).await;
    }
}

on_every_adapter! {
    async fn an_empty_or_malformed_token_is_invalid_token() {
        let app = TestApp::spawn().await;
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer not-a-jwt",
            "Bearer a.b.c",
            "Bearer e30.e30.e30.e30",
        ] {
            let response = app
                .client
                .get(app.url("/chat/"))
                .header("Authorization", value)
                .send()
                .await;
            let response = response.expect("request");
            let challenge = header(&response, "www-authenticate");
            assert!(
                challenge.starts_with("Bearer error=\"invalid_token\""),
                "{value:?}: {challenge}"
            );
            assert!(challenge.contains("error_description=\""), "{challenge}");
            problem(response, 401).await;
        }
    }
}

on_every_adapter! {
    async fn an_expired_token_is_refused_beyond_the_leeway() {
        let app = TestApp::spawn().await;
        let mut claims = valid_claims();
        claims["exp"] = json!(now() - 120);
        let (challenge, detail) = rejected(&app, &hs256(claims)).await;
        assert!(challenge.contains("invalid_token"));
        assert!(detail.contains("expired"), "{detail}");

        // Within the 30 s default leeway a just-expired token still passes.
        let mut claims = valid_claims();
        claims["exp"] = json!(now() - 10);
        assert_eq!(app.get("/chat/", &hs256(claims)).await.status(), 200);
    }
}

on_every_adapter! {
    async fn a_token_not_valid_yet_is_refused() {
        let app = TestApp::spawn().await;
        let mut claims = valid_claims();
        claims["nbf"] = json!(now() + 300);
        let (_, detail) = rejected(&app, &hs256(claims)).await;
        assert!(detail.contains("not valid yet"), "{detail}");

        let mut claims = valid_claims();
        claims["nbf"] = json!(now() - 5);
        assert_eq!(app.get("/chat/", &hs256(claims)).await.status(), 200);
    }
}

on_every_adapter! {
    async fn exp_and_sub_are_required_and_sub_must_be_a_uuid() {
        let app = TestApp::spawn().await;
        let (_, detail) = rejected(&app, &hs256(json!({ "sub": Uuid::new_v4().to_string() }))).await;
        assert!(detail.contains("'exp'"), "{detail}");
        let (_, detail) = rejected(&app, &hs256(json!({ "exp": now() + 60 }))).await;
        assert!(detail.contains("'sub'"), "{detail}");
        for sub in [
            json!("not-a-uuid"),
            json!(42),
            json!("0b9f7f0e5c4a4d7e9a510f6a3e0c2b11"),
        ] {
            let (_, detail) = rejected(&app, &hs256(json!({ "sub": sub, "exp": now() + 60 }))).await;
            assert!(detail.contains("not a UUID"), "{sub}: {detail}");
        }
    }
}

on_every_adapter! {
    async fn a_bad_signature_is_refused() {
        let app = TestApp::spawn().await;
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret"),
            valid_claims(),
        );
        let (challenge, detail) = rejected(&app, &forged).await;
        assert!(detail.contains("signature"), "{detail}");
        assert!(
            challenge.contains("error_description=\"token signature is invalid\""),
            "{challenge}"
        );
    }
}

on_every_adapter! {
    async fn alg_none_and_unlisted_algorithms_are_refused() {
        use base64::Engine;
        let encode = |value: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&value).expect("json"))
        };
        let app = TestApp::spawn().await;
        for header_json in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "None"}),
            json!({"typ": "JWT"}),
        ] {
            let token = format!(
                "{}.{}.",
                encode(header_json.clone()),
                encode(valid_claims())
            );
            rejected(&app, &token).await;
        }
        // HS512 with the right secret, on a server that accepts only HS256.
        let hs512 = sign(
            Algorithm::HS512,
            &EncodingKey::from_secret(crate::helpers::SECRET.as_bytes()),
            valid_claims(),
        );
        let (_, detail) = rejected(&app, &hs512).await;
        assert!(detail.contains("not accepted"), "{detail}");
    }
}

on_every_adapter! {
    async fn rs256_tokens_verify_with_the_public_key() {
        let key_file = fixture("rsa_public.pem");
        let app = TestApp::spawn_with(&[("JWT_SECRET", ""), ("JWT_PUBLIC_KEY_FILE", &key_file)]).await;
        let token = sign(
            Algorithm::RS256,
            &private_key(Algorithm::RS256, "rsa_private.pem"),
            valid_claims(),
        );
        assert_eq!(app.get("/chat/", &token).await.status(), 200);
    }
}

on_every_adapter! {
    async fn hs256_signed_with_the_public_key_is_algorithm_confusion_and_refused() {
        let key_file = fixture("rsa_public.pem");
        let app = TestApp::spawn_with(&[
            ("JWT_SECRET", ""),
            ("JWT_PUBLIC_KEY_FILE", &key_file),
            ("JWT_ALGORITHMS", "RS256"),
        ])
        .await;
        let public_pem = std::fs::read(&key_file).expect("fixture");
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public_pem),
            valid_claims(),
        );
        let (_, detail) = rejected(&app, &confused).await;
        assert!(detail.contains("not accepted"), "{detail}");
    }
}

on_every_adapter! {
    async fn es256_and_eddsa_tokens_verify_with_their_keys() {
        for (alg, public, private) in [
            (Algorithm::ES256, "ec_public.pem", "ec_private.pem"),
            (Algorithm::EdDSA, "ed_public.pem", "ed_private.pem"),
        ] {
            let key_file = fixture(public);
            let name = format!("{alg:?}");
            let app = TestApp::spawn_with(&[
                ("JWT_SECRET", ""),
                ("JWT_PUBLIC_KEY_FILE", &key_file),
                ("JWT_ALGORITHMS", &name),
            ])
            .await;
            let token = sign(alg, &private_key(alg, private), valid_claims());
            assert_eq!(app.get("/chat/", &token).await.status(), 200, "{name}");
            // The RSA key's signature does not verify against this key.
            let rsa = sign(
                Algorithm::RS256,
                &private_key(Algorithm::RS256, "rsa_private.pem"),
                valid_claims(),
            );
            rejected(&app, &rsa).await;
        }
    }
}

on_every_adapter! {
    async fn with_both_keys_each_token_is_checked_with_its_own_key() {
        let key_file = fixture("rsa_public.pem");
        let app = TestApp::spawn_with(&[
            ("JWT_PUBLIC_KEY_FILE", &key_file),
            ("JWT_ALGORITHMS", "HS256,RS256"),
        ])
        .await;
        assert_eq!(
            app.get("/chat/", &hs256(valid_claims())).await.status(),
            200
        );
        let rs = sign(
            Algorithm::RS256,
            &private_key(Algorithm::RS256, "rsa_private.pem"),
            valid_claims(),
        );
        assert_eq!(app.get("/chat/", &rs).await.status(), 200);
        let ps = sign(
            Algorithm::PS256,
            &private_key(Algorithm::PS256, "rsa_private.pem"),
            valid_claims(),
        );
        rejected(&app, &ps).await;
    }
}

on_every_adapter! {
    async fn the_issuer_is_checked_when_configured() {
        let app = TestApp::spawn_with(&[("JWT_ISSUER", "https://issuer.example")]).await;
        let mut claims = valid_claims();
        claims["iss"] = json!("https://issuer.example");
        assert_eq!(
            app.get("/chat/", &hs256(claims.clone())).await.status(),
            200
        );
        claims["iss"] = json!("https://evil.example");
        let (_, detail) = rejected(&app, &hs256(claims)).await;
        assert!(detail.contains("issuer"), "{detail}");
        let (_, detail) = rejected(&app, &hs256(valid_claims())).await;
        assert!(detail.contains("'iss'"), "{detail}");
    }
}

on_every_adapter! {
    async fn the_audience_is_checked_when_configured() {
        let app = TestApp::spawn_with(&[("JWT_AUDIENCE", "chat-api, analytics")]).await;
        for aud in [json!("chat-api"), json!(["other", "analytics"])] {
            let mut claims = valid_claims();
            claims["aud"] = aud.clone();
            assert_eq!(
                app.get("/chat/", &hs256(claims)).await.status(),
                200,
                "{aud}"
            );
        }
        for aud in [json!("other"), json!(["x", "y"])] {
            let mut claims = valid_claims();
            claims["aud"] = aud;
            let (_, detail) = rejected(&app, &hs256(claims)).await;
            assert!(detail.contains("audience"), "{detail}");
        }
        let (_, detail) = rejected(&app, &hs256(valid_claims())).await;
        assert!(detail.contains("'aud'"), "{detail}");
    }
}

on_every_adapter! {
    async fn iss_and_aud_are_ignored_when_not_configured() {
        let app = TestApp::spawn().await;
        let mut claims = valid_claims();
        claims["iss"] = json!("anyone");
        claims["aud"] = json!(["whatever"]);
        assert_eq!(app.get("/chat/", &hs256(claims)).await.status(), 200);
    }
}

on_every_adapter! {
    async fn sub_is_the_same_user_in_any_case() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "mine").await;
        let upper = hs256(json!({ "sub": user.id.to_string().to_uppercase(), "exp": now() + 60 }));
        let response = app
            .get(
                &format!("/chat/{}", chat["id"].as_str().expect("id")),
                &upper,
            )
            .await;
        assert_eq!(response.status(), 200);
    }
}

on_every_adapter! {
    async fn rejections_never_echo_the_token() {
        let app = TestApp::spawn().await;
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"x"),
            valid_claims(),
        );
        let response = app.get("/chat/", &forged).await;
        let challenge = header(&response, "www-authenticate");
        let body = response.text().await.expect("body");
        assert!(!body.contains(&forged) && !challenge.contains(&forged));
    }
}
