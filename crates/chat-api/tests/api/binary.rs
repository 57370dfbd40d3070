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
fn start(command: Command) -> (Child, String, String) {
    let (mut child, address) = listening(command);
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

/// Starts `serve` and waits for its "listening" line; returns the address
/// (without waiting for a demo banner, which a configured key never prints).
fn listening(mut command: Command) -> (Child, String) {
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
    (child, address)
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

    let client = crate::helpers::http_client();
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
fn the_demo_banner_arrives_whole_before_the_listening_line_on_a_shared_stream() {
    // `cargo run 2>&1 | tee run.log`, or a terminal: stdout (the log thread) and
    // stderr (the banner) are one pipe, and nothing may cut a banner line in two.
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let mut command = chat_api(dir.path());
    command
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .stdout(writer.try_clone().expect("a second end for stdout"))
        .stderr(writer);
    let child = command.spawn().expect("the binary starts");
    // The parent's copies of the write end go, so the reader sees EOF at exit.
    drop(command);

    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            let listening = line.contains("listening");
            lines.push(line);
            if listening {
                break;
            }
        }
        let _ = sender.send(lines);
    });
    let lines = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("a listening line within 30 s");
    stop(child);

    let listening = lines.last().expect("at least the listening line");
    let address = listening
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the listening line names the address: {listening}"));
    let start = lines
        .iter()
        .position(|line| line.starts_with("No JWT key configured"))
        .unwrap_or_else(|| panic!("the banner comes before the listening line: {lines:#?}"));
    assert!(
        lines.len() > start + 8,
        "the whole banner before the listening line: {lines:#?}"
    );
    let banner = &lines[start..start + 7];
    let token = &banner[3];
    assert!(
        token.starts_with("eyJ"),
        "the token on a line of its own: {banner:#?}"
    );
    assert_eq!(
        banner,
        [
            lines[start].as_str(),
            "Demo token for a new user, valid for 1 h:",
            "",
            token,
            "",
            "Try it:",
            "",
        ],
        "the banner's lines follow each other, unbroken"
    );
    assert_eq!(
        lines[start + 7],
        format!("curl -H 'Authorization: Bearer {token}' http://{address}/chat/"),
        "the curl line is one line, whole: {lines:#?}"
    );
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

/// Sends SIGTERM to a child process.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the child to exit, up to `within`.
fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_exits_zero() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = chat_api(dir.path());
    command
        .env("JWT_SECRET", crate::helpers::SECRET)
        .env("SHUTDOWN_GRACE_SECONDS", "10");
    let (mut child, address, _) = start(command);
    let token = crate::helpers::User::new().token;

    // A request whose body is only half sent when the signal arrives.
    let body = br#"{"title": "sent across a shutdown"}"#;
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST /chat/ HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("head");
    stream.write_all(&body[..10]).expect("first half");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));

    terminate(&child);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still finishing the request in flight"
    );
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "no new connections once stopping"
    );

    stream.write_all(&body[10..]).expect("second half");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the request completed normally: {response}"
    );
    assert!(response.contains("sent across a shutdown"));

    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
}

#[test]
fn sigint_stops_gracefully_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = chat_api(dir.path());
    command.env("JWT_SECRET", crate::helpers::SECRET);
    let (mut child, _, _) = start(command);
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

/// A `serve` started with JSON logs on stdout (and stderr piped): the process,
/// its address, the lines it wrote up to and including its `listening` line,
/// and the later ones as they come (until the process closes stdout).
pub(crate) struct Serving {
    pub(crate) child: Child,
    pub(crate) address: String,
    pub(crate) early: Vec<String>,
    pub(crate) later: std::sync::mpsc::Receiver<String>,
    pub(crate) reader: std::thread::JoinHandle<()>,
}

impl Serving {
    /// Starts `command` on a free port and waits for its `listening` line.
    pub(crate) fn start(command: &mut Command) -> Self {
        let mut child = command
            .env("BIND_ADDRESS", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (lines, later) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut early = Vec::new();
        let address = loop {
            let line = later
                .recv_timeout(Duration::from_secs(30))
                .expect("a log line");
            let entry: Value = serde_json::from_str(&line).expect("JSON line");
            early.push(line);
            if entry["message"] == "listening" {
                break entry["address"].as_str().expect("address").to_owned();
            }
        };
        Self {
            child,
            address,
            early,
            later,
            reader,
        }
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_never_a_secret() {
    let database = chat_testing::TestDatabase::create().await;
    // Trust authentication ignores the password, so it can be any secret-looking string.
    let password = "db-pa55word-never-logged";
    let mut url = url::Url::parse(database.url()).expect("url");
    url.set_password(Some(password)).expect("password");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = chat_api(dir.path());
    command
        .env("DATABASE_URL", url.as_str())
        .env("JWT_SECRET", crate::helpers::SECRET)
        .env("RUST_LOG", "debug");
    let Serving {
        mut child,
        address,
        early,
        later,
        reader,
    } = Serving::start(&mut command);

    let user = crate::helpers::User::new();
    let client = crate::helpers::http_client();
    let created = client
        .post(format!("http://{address}/chat/"))
        .bearer_auth(&user.token)
        .header("x-request-id", "req-abc-123")
        .json(&json!({"title": "logged"}))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 201);
    let forged = format!("{}x", user.token);
    let rejected = client
        .get(format!("http://{address}/chat/"))
        .bearer_auth(&forged)
        .send()
        .await
        .expect("request");
    assert_eq!(rejected.status(), 401);

    terminate(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
    reader.join().expect("reader");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    let lines: Vec<String> = early.into_iter().chain(later.try_iter()).collect();

    let mut ours = 0;
    for line in &lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("every stdout line is JSON: {line}"));
        for secret in [
            crate::helpers::SECRET,
            password,
            user.token.as_str(),
            forged.as_str(),
        ] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
        if entry["span"]["request_id"] == "req-abc-123" {
            ours += 1;
            assert_eq!(entry["span"]["route"], "/chat/");
            assert_eq!(entry["span"]["user_id"], user.id.to_string());
        }
        if entry["message"] == "request completed" {
            let span = &entry["span"];
            assert!(
                span["request_id"].is_string()
                    && span["status"].is_number()
                    && span["latency_ms"].is_number(),
                "{line}"
            );
        }
    }
    assert!(ours >= 1, "the request's lines carry its id: {lines:#?}");
    assert!(
        !stderr.contains(password)
            && !stderr.contains(crate::helpers::SECRET)
            && !stderr.contains(&user.token)
    );
}

#[test]
fn a_key_set_url_with_a_key_file_refuses_to_start_without_showing_the_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = chat_api(dir.path())
        .env("JWT_JWKS_URL", "https://client:jwks-pa55@idp.example/jwks")
        .env(
            "JWT_PUBLIC_KEY_FILE",
            crate::helpers::fixture("rsa_public.pem"),
        )
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("JWT_JWKS_URL and JWT_PUBLIC_KEY_FILE are both set"),
        "{stderr}"
    );
    assert!(!stderr.contains("jwks-pa55"), "{stderr}");
    assert!(!dir.path().join("chat.db").exists(), "nothing was started");
}

#[tokio::test]
async fn a_key_set_url_is_logged_without_its_credentials() {
    // A port nothing listens on: the fetch fails, and the failure is logged.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = chat_api(dir.path());
    command
        .env(
            "JWT_JWKS_URL",
            format!("http://client:jwks-pa55@127.0.0.1:{port}/certs?key=jwks-query-secret"),
        )
        .env("RUST_LOG", "debug");
    let Serving {
        mut child,
        address,
        early: mut lines,
        later: lines_rx,
        reader,
    } = Serving::start(&mut command);
    let ready = crate::helpers::http_client()
        .get(format!("http://{address}/health/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 503, "the key set was never fetched");

    terminate(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
    reader.join().expect("reader");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    lines.extend(lines_rx.try_iter());

    let failure = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("fetching the key set failed"))
        })
        .unwrap_or_else(|| panic!("the failed fetch is logged: {lines:#?}"));
    assert_eq!(
        failure["url"],
        format!("http://127.0.0.1:{port}/certs"),
        "{failure}"
    );
    for line in lines.iter().chain([&stderr]) {
        assert!(
            !line.contains("jwks-pa55") && !line.contains("jwks-query-secret"),
            "a credential in the log: {line}"
        );
    }
}

/// An HTTPS server on 127.0.0.1 (certificate `tls_server.pem`, signed by the
/// test CA `tls_ca.pem`) answering every request with `body` as JSON.
async fn https_jwks_server(body: String) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fixture = crate::helpers::fixture;
    let chain = CertificateDer::pem_file_iter(fixture("tls_server.pem"))
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(fixture("tls_server_key.pem")).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA ends the handshake: fine.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    address
}

/// Starts `command`, asks `/health/ready` and `GET /chat/` with `token`, stops
/// it: the two statuses.
async fn ready_and_listed(command: Command, client: &reqwest::Client, token: &str) -> (u16, u16) {
    let (child, service) = listening(command);
    let ready = client
        .get(format!("http://{service}/health/ready"))
        .send()
        .await
        .expect("request");
    let answer = client
        .get(format!("http://{service}/chat/"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    stop(child);
    (ready.status().as_u16(), answer.status().as_u16())
}

// Multi-threaded: `start` blocks this thread while the binary fetches from
// the HTTPS server, which must keep running on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_is_fetched_over_https_and_the_certificate_is_checked() {
    use jsonwebtoken::Algorithm;

    let all: Value = serde_json::from_slice(
        &std::fs::read(crate::helpers::fixture("public_jwks.json")).expect("fixture"),
    )
    .expect("JSON");
    let mut key = all["rsa"].clone();
    key["kid"] = json!("tls");
    let address = https_jwks_server(json!({ "keys": [key] }).to_string()).await;
    let url = format!("https://{address}/jwks");
    let client = crate::helpers::http_client();
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some("tls".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({ "sub": uuid::Uuid::new_v4().to_string(), "exp": crate::helpers::now() + 600 }),
        &crate::helpers::private_key(Algorithm::RS256, "rsa_private.pem"),
    )
    .expect("token");

    // Trusting the test CA (SSL_CERT_FILE, read by rustls-native-certs):
    // the set is fetched before the port opens, so the service is ready at once.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = chat_api(dir.path());
    command
        .env("JWT_JWKS_URL", &url)
        .env("SSL_CERT_FILE", crate::helpers::fixture("tls_ca.pem"));
    let (ready, answer) = ready_and_listed(command, &client, &token).await;
    assert_eq!(ready, 200);
    assert_eq!(answer, 200);

    // Trusting other roots only (here: the server's own certificate, which
    // did not sign itself): the fetch fails, no key set, not ready.
    let mut command = chat_api(dir.path());
    command
        .env("JWT_JWKS_URL", &url)
        .env("SSL_CERT_FILE", crate::helpers::fixture("tls_server.pem"));
    let (ready, answer) = ready_and_listed(command, &client, &token).await;
    assert_eq!(ready, 503, "an untrusted certificate is refused");
    assert_eq!(answer, 503);

    // No roots at all: the HTTP client cannot be built, and that is a
    // one-line refusal to start, not a service that can never be ready.
    let empty = dir.path().join("no-roots.pem");
    std::fs::write(&empty, "").expect("write");
    let output = chat_api(dir.path())
        .env("JWT_JWKS_URL", &url)
        .env("SSL_CERT_FILE", &empty)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("refusing to start: JWT_JWKS_URL: cannot build the HTTP client"),
        "{stderr}"
    );
}
