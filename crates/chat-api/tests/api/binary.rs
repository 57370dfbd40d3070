//! The built binary itself: the embedded SQLite default in an empty directory,
//! refusing bad production settings, and the `token` and `migrate` commands.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-api");

/// The binary with a clean environment (no inherited DATABASE_URL or keys).
fn chat_api(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// Starts `serve` and waits for its "listening" line; returns the address and
/// everything it wrote on stderr until then.
fn start(mut command: Command) -> (Child, String, String) {
    let mut child = command
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(address) = line.split("address=").nth(1) {
                let _ = sender.send(
                    address
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("a listening line on stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let done = line.starts_with("curl ");
            lines.push(line);
            if done {
                let _ = sender.send(lines.join("\n"));
                break;
            }
        }
    });
    let banner = receiver
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    (child, address, banner)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
}

#[tokio::test]
async fn the_default_runs_on_embedded_sqlite_with_a_printed_demo_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, address, banner) = start(chat_api(dir.path()));
    let token = banner
        .lines()
        .find(|line| line.starts_with("eyJ"))
        .expect("a demo token on stderr")
        .to_owned();
    assert!(
        banner.contains(&format!(
            "curl -H 'Authorization: Bearer {token}' http://{address}/chat/"
        )),
        "{banner}"
    );

    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://{address}/chat/"))
        .bearer_auth(&token)
        .json(&json!({"title": "from the binary"}))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 201);
    let list: Value = client
        .get(format!("http://{address}/chat"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(list[0]["title"], "from the binary");
    assert!(
        dir.path().join("chat.db").exists(),
        "the SQLite file lives in the working directory"
    );
    stop(child);
}

#[test]
fn production_without_a_key_refuses_to_start_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = chat_api(dir.path())
        .env("APP_ENV", "production")
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(!dir.path().join("chat.db").exists(), "nothing was started");

    let weak = chat_api(dir.path())
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "short")
        .output()
        .expect("runs");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("32"));
}

#[test]
fn token_prints_a_token_the_server_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = uuid::Uuid::new_v4().to_string();
    let output = chat_api(dir.path())
        .env("JWT_SECRET", crate::helpers::SECRET)
        .args(["token", "--sub", &sub, "--ttl", "120"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("UTF-8");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(
        token.trim(),
        &jsonwebtoken::DecodingKey::from_secret(crate::helpers::SECRET.as_bytes()),
        &validation,
    )
    .expect("a valid token")
    .claims;
    assert_eq!(claims["sub"], sub);
    let bad = chat_api(dir.path())
        .env("JWT_SECRET", "s")
        .args(["token", "--sub", "nope"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}

#[test]
fn migrate_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = chat_api(dir.path()).arg("migrate").output().expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("chat.db").exists());
    let again = chat_api(dir.path()).arg("migrate").output().expect("runs");
    assert!(again.status.success(), "migrating twice is harmless");
}
