//! All settings, read once from the environment (and `.env`) and validated
//! before anything binds a port. Secrets are wrapped so they cannot be logged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::SecretBox;

pub use crate::auth::JwtSettings;
use crate::auth::keys::{MIN_RSA_BITS, check_production_keys};
use crate::auth::{JwksSettings, TokenVerifier, default_algorithm_for_pem, is_hmac};
use crate::traces::{OtlpProtocol, TraceSettings};

/// Development (the default) or production, which refuses weak settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    /// Lenient: a random JWT secret is made when none is configured.
    Development,
    /// Strict: a JWT key is required; a secret must be at least 32 bytes (48
    /// with HS384, 64 with HS512) and an RSA key at least 2048 bits (a
    /// smaller RSA key of the JWKS is ignored).
    Production,
}

/// `pretty` for humans, `json` (one object per line) for machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, one line per event, no colours.
    Pretty,
    /// One JSON object per line on stdout.
    Json,
}

/// Everything the HTTP service needs to run, storage aside: the `DATABASE_*`
/// settings belong to the storage adapter and are read by the binary's wiring
/// (`app::Settings`), so this module never names the adapter.
#[derive(Debug)]
pub struct Config {
    /// Development or production.
    pub app_env: AppEnv,
    /// Where to listen.
    pub bind_address: SocketAddr,
    /// Where `/metrics` is served instead of the public address (with
    /// `/health/*` on both), when set (`ADMIN_BIND_ADDRESS`).
    pub admin_bind_address: Option<SocketAddr>,
    /// Apply pending migrations at start.
    pub run_migrations: bool,
    /// How tokens are verified.
    pub jwt: JwtSettings,
    /// Log format and filter.
    pub logging: LogSettings,
    /// Where spans are exported (`OTEL_*`); `None`: nowhere.
    pub traces: Option<TraceSettings>,
    /// HTTP server limits and timeouts.
    pub http: HttpSettings,
    /// Origins allowed to call the API from a browser; empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long an `Idempotency-Key` is kept at least (then purged).
    pub idempotency_key_ttl: Duration,
}

/// Where logs go and how much of them.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Line format.
    pub format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` syntax), already validated.
    pub filter: String,
}

/// What `RUST_LOG` defaults to: our events at info, the database drivers only
/// when something is wrong.
pub const DEFAULT_LOG_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,actix_server=warn";

impl LogSettings {
    /// Reads `LOG_FORMAT` and `RUST_LOG` from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads `LOG_FORMAT` and `RUST_LOG` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env(&lookup))
    }

    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let format = match env.get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(refuse(format!(
                    "LOG_FORMAT must be pretty or json, got '{other}'"
                )));
            }
        };
        let filter = env
            .get("RUST_LOG")
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        tracing_subscriber::EnvFilter::try_new(&filter).map_err(|error| {
            refuse(format!(
                "RUST_LOG is not a valid filter ('{filter}'): {error}"
            ))
        })?;
        Ok(Self { format, filter })
    }
}

/// HTTP server tuning and protection against slow or greedy clients.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Worker threads.
    pub workers: usize,
    /// Concurrent connections per worker before new ones wait.
    pub max_connections: usize,
    /// How long a client has to send a request's head.
    pub client_request_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: Duration,
    /// Largest total size of a request's headers; larger ones get 431.
    pub max_header_bytes: usize,
}

/// Why the configuration was refused: one line, for stderr.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The trace export settings (`OTEL_*`): `None` unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or its traces-only form)
/// is set, and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says no.
fn read_traces(env: &Env<'_>) -> Result<Option<TraceSettings>, ConfigError> {
    let endpoint = env
        .get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env.get("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let exporter = env.get("OTEL_TRACES_EXPORTER");
    match exporter.as_deref() {
        None | Some("otlp" | "none") => {}
        Some(other) => {
            return Err(refuse(format!(
                "OTEL_TRACES_EXPORTER must be otlp or none, got '{other}'"
            )));
        }
    }
    if endpoint.is_none() || disabled || exporter.as_deref() == Some("none") {
        return Ok(None);
    }
    let protocol = env
        .get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env.get("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol.as_deref() {
        None | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => {
            return Err(refuse(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc, got '{other}'"
            )));
        }
    };
    Ok(Some(TraceSettings {
        protocol,
        service_name: env
            .get("OTEL_SERVICE_NAME")
            .unwrap_or_else(|| "chat-api".to_owned()),
    }))
}

/// A refusal with this one-line reason.
pub(crate) fn refuse(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl Config {
    /// Reads the process environment (after `.env`, which the binary loads).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`; tests pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let app_env = match env.get("APP_ENV").as_deref() {
            None | Some("development" | "dev" | "local" | "test") => AppEnv::Development,
            Some("production" | "prod") => AppEnv::Production,
            Some(other) => {
                return Err(refuse(format!(
                    "APP_ENV must be development or production, got '{other}'"
                )));
            }
        };
        let logging = LogSettings::read(&env)?;
        let bind_address = env.parse("BIND_ADDRESS", "127.0.0.1:8080".parse().ok())?;
        let admin_bind_address = match env.get("ADMIN_BIND_ADDRESS") {
            None => None,
            Some(_) => Some(env.parse::<SocketAddr>("ADMIN_BIND_ADDRESS", None)?),
        };
        if let Some(admin) = admin_bind_address
            && admin == bind_address
            && admin.port() != 0
        {
            return Err(refuse(format!(
                "ADMIN_BIND_ADDRESS must differ from BIND_ADDRESS (both are {admin})"
            )));
        }
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let http = HttpSettings {
            workers: env.parse_in("HTTP_WORKERS", workers, 1..=1_024)?,
            max_connections: env.parse_in("HTTP_MAX_CONNECTIONS", 10_000, 1..=1_000_000)?,
            client_request_timeout: Duration::from_millis(env.parse_in(
                "HTTP_CLIENT_REQUEST_TIMEOUT_MS",
                5_000,
                1..=600_000,
            )?),
            keep_alive: Duration::from_secs(env.parse_in(
                "HTTP_KEEP_ALIVE_SECONDS",
                5,
                0..=3_600,
            )?),
            // actix-http refuses heads over 128 KiB by itself; 64 KiB is our ceiling.
            max_header_bytes: env.parse_in(
                "HTTP_MAX_HEADER_BYTES",
                16 * 1024,
                1_024..=64 * 1024,
            )?,
        };
        let config = Self {
            app_env,
            bind_address,
            admin_bind_address,
            run_migrations: env.parse_bool("RUN_MIGRATIONS", true)?,
            jwt: read_jwt(&env, app_env)?,
            logging,
            traces: read_traces(&env)?,
            http,
            cors_allowed_origins: env.list("CORS_ALLOWED_ORIGINS"),
            shutdown_grace: Duration::from_secs(env.parse_in(
                "SHUTDOWN_GRACE_SECONDS",
                30,
                0..=3_600,
            )?),
            idempotency_key_ttl: Duration::from_secs(env.parse_in(
                "IDEMPOTENCY_KEY_TTL_SECONDS",
                86_400,
                1..=31_536_000,
            )?),
        };
        for origin in &config.cors_allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(refuse(format!(
                    "CORS_ALLOWED_ORIGINS entries must be origins like https://app.example.com, got '{origin}'"
                )));
            }
        }
        Ok(config)
    }
}

fn read_jwt(env: &Env<'_>, app_env: AppEnv) -> Result<JwtSettings, ConfigError> {
    // The secret is used as its raw bytes: not trimmed.
    let mut secret = env.raw("JWT_SECRET").map(String::into_bytes);
    let public_key_file = env.get("JWT_PUBLIC_KEY_FILE").map(PathBuf::from);
    let jwks = read_jwks(env, app_env)?;
    if jwks.is_some() && public_key_file.is_some() {
        return Err(refuse(
            "JWT_JWKS_URL and JWT_PUBLIC_KEY_FILE are both set; set one of them (JWT_SECRET may go with either)",
        ));
    }
    let public_key_pem = match &public_key_file {
        Some(path) => Some(std::fs::read(path).map_err(|error| {
            refuse(format!(
                "JWT_PUBLIC_KEY_FILE {} cannot be read: {error}",
                path.display()
            ))
        })?),
        None => None,
    };
    let mut generated_secret = false;
    match (&secret, public_key_pem.is_some() || jwks.is_some(), app_env) {
        (None, false, AppEnv::Production) => {
            return Err(refuse(
                "no JWT key configured: set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL (required with APP_ENV=production)",
            ));
        }
        (None, false, AppEnv::Development) => {
            secret = Some(random_secret());
            generated_secret = true;
        }
        _ => {}
    }

    let algorithms = match env.get("JWT_ALGORITHMS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                name.parse::<Algorithm>()
                    .map_err(|_| refuse(format!("JWT_ALGORITHMS: unsupported algorithm '{name}'")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => default_algorithms(secret.is_some(), public_key_pem.as_deref(), jwks.is_some())?,
    };
    if algorithms.is_empty() {
        return Err(refuse("JWT_ALGORITHMS lists no algorithm"));
    }
    for alg in &algorithms {
        if is_hmac(*alg) && secret.is_none() {
            return Err(refuse(format!(
                "JWT_ALGORITHMS lists {alg:?} but JWT_SECRET is not set"
            )));
        }
        if !is_hmac(*alg) && public_key_pem.is_none() && jwks.is_none() {
            return Err(refuse(format!(
                "JWT_ALGORITHMS lists {alg:?} but neither JWT_PUBLIC_KEY_FILE nor JWT_JWKS_URL is set"
            )));
        }
    }
    if app_env == AppEnv::Production {
        check_production_keys(secret.as_deref(), public_key_pem.as_deref(), &algorithms)
            .map_err(refuse)?;
    }
    let settings = JwtSettings {
        secret: secret.map(|bytes| SecretBox::new(bytes.into_boxed_slice())),
        public_key_pem,
        public_key_file,
        jwks,
        algorithms,
        issuer: env.get("JWT_ISSUER"),
        audience: env.list("JWT_AUDIENCE"),
        leeway: Duration::from_secs(env.parse_in("JWT_LEEWAY_SECONDS", 30, 0..=86_400)?),
        generated_secret,
    };
    // A key that cannot serve the listed algorithms refuses to start here,
    // with every other configuration error.
    TokenVerifier::new(&settings).map_err(refuse)?;
    Ok(settings)
}

/// HS256 with only a secret; RS256 with only a public key (for an EC or
/// Ed25519 key, where RS256 cannot work, the key's own algorithm) or a key
/// set; both with both.
fn default_algorithms(
    has_secret: bool,
    public_key: Option<&[u8]>,
    has_jwks: bool,
) -> Result<Vec<Algorithm>, ConfigError> {
    let mut algorithms = Vec::new();
    if has_secret {
        algorithms.push(Algorithm::HS256);
    }
    if let Some(pem) = public_key {
        algorithms.push(default_algorithm_for_pem(pem).map_err(refuse)?);
    }
    if has_jwks {
        algorithms.push(Algorithm::RS256);
    }
    Ok(algorithms)
}

/// `JWT_JWKS_URL` and its intervals, when the URL is set. The URL is never
/// repeated in a message: it may carry credentials.
fn read_jwks(env: &Env<'_>, app_env: AppEnv) -> Result<Option<JwksSettings>, ConfigError> {
    let Some(text) = env.get("JWT_JWKS_URL") else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&text)
        .map_err(|_| refuse("JWT_JWKS_URL is not a URL; expected http:// or https://"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(format!(
            "JWT_JWKS_URL must be an http:// or https:// URL, got scheme '{}'",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("JWT_JWKS_URL has no host"));
    }
    Ok(Some(JwksSettings {
        url,
        refresh: Duration::from_secs(env.parse_in("JWT_JWKS_REFRESH_SECONDS", 300, 1..=86_400)?),
        min_refetch: Duration::from_secs(env.parse_in(
            "JWT_JWKS_MIN_REFETCH_SECONDS",
            10,
            1..=86_400,
        )?),
        min_rsa_bits: if app_env == AppEnv::Production {
            MIN_RSA_BITS
        } else {
            0
        },
    }))
}

/// 32 random bytes, base64url: a development secret that lives as long as the process.
fn random_secret() -> Vec<u8> {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into_bytes()
}

/// Typed access to the variables, with one-line errors naming the variable.
pub(crate) struct Env<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The value exactly as set; empty counts as unset.
    pub(crate) fn raw(&self, key: &str) -> Option<String> {
        (self.0)(key).filter(|value| !value.is_empty())
    }

    /// The value, with surrounding white space removed; empty counts as unset.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        key: &str,
        default: Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(text) => text
                .parse()
                .map_err(|_| refuse(format!("{key} is not valid: '{text}'"))),
            None => default.ok_or_else(|| refuse(format!("{key} is required"))),
        }
    }

    pub(crate) fn parse_in<T>(
        &self,
        key: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value = self.parse(key, Some(default))?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(refuse(format!(
                "{key} must be between {} and {}, got {value}",
                range.start(),
                range.end()
            )))
        }
    }

    pub(crate) fn parse_bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self
            .get(key)
            .map(|value| value.to_ascii_lowercase())
            .as_deref()
        {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(refuse(format!(
                "{key} must be true or false, got '{other}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_run_on_sqlite_with_a_generated_secret() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.bind_address.to_string(), "127.0.0.1:8080");
        assert!(config.jwt.generated_secret);
        assert_eq!(config.jwt.algorithms, [Algorithm::HS256]);
        assert_eq!(config.jwt.leeway, Duration::from_secs(30));
        assert!(config.run_migrations);
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.idempotency_key_ttl, Duration::from_secs(86_400));
        assert_eq!(config.logging.format, LogFormat::Pretty);
    }

    #[test]
    fn production_refuses_a_missing_or_short_key() {
        let missing = config(&[("APP_ENV", "production")]).expect_err("refused");
        assert!(missing.to_string().contains("no JWT key"), "{missing}");
        let short =
            config(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).expect_err("refused");
        assert!(short.to_string().contains("at least 32"), "{short}");
        let good =
            config(&[("APP_ENV", "production"), ("JWT_SECRET", &"x".repeat(32))]).expect("valid");
        assert!(!good.jwt.generated_secret);
    }

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn production_secrets_must_fit_the_strictest_hmac_algorithm() {
        for (alg, needed) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
            let short = "x".repeat(needed - 1);
            let error = config(&[
                ("APP_ENV", "production"),
                ("JWT_SECRET", &short),
                ("JWT_ALGORITHMS", alg),
            ])
            .expect_err("refused");
            let line = error.to_string();
            assert!(line.starts_with("JWT_SECRET is"), "{line}");
            assert!(
                line.contains(&format!("{} bytes", needed - 1))
                    && line.contains(&format!("at least {needed}")),
                "{line}"
            );
            assert!(!line.contains('\n'), "{line}");
            let exact = "x".repeat(needed);
            config(&[
                ("APP_ENV", "production"),
                ("JWT_SECRET", &exact),
                ("JWT_ALGORITHMS", alg),
            ])
            .expect("long enough");
            // Development stays lenient.
            config(&[("JWT_SECRET", "short"), ("JWT_ALGORITHMS", alg)]).expect("development");
        }
    }

    #[test]
    fn production_refuses_rsa_keys_under_2048_bits() {
        let small = fixture("rsa_2047_public.pem");
        let error = config(&[("APP_ENV", "production"), ("JWT_PUBLIC_KEY_FILE", &small)])
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "JWT_PUBLIC_KEY_FILE holds a 2047-bit RSA key; APP_ENV=production requires at least 2048 bits"
        );
        let enough = fixture("rsa_public.pem");
        config(&[("APP_ENV", "production"), ("JWT_PUBLIC_KEY_FILE", &enough)]).expect("2048 bits");
        // Development stays lenient.
        config(&[("JWT_PUBLIC_KEY_FILE", &small)]).expect("development");
    }

    #[test]
    fn algorithms_must_have_their_key() {
        let error =
            config(&[("JWT_SECRET", "s"), ("JWT_ALGORITHMS", "RS256")]).expect_err("refused");
        assert!(error.to_string().contains("JWT_PUBLIC_KEY_FILE"), "{error}");
        let error =
            config(&[("JWT_SECRET", "s"), ("JWT_ALGORITHMS", "none")]).expect_err("refused");
        assert!(
            error.to_string().contains("unsupported algorithm 'none'"),
            "{error}"
        );
        let ok = config(&[("JWT_SECRET", "s"), ("JWT_ALGORITHMS", "HS512, HS256")]).expect("valid");
        assert_eq!(ok.jwt.algorithms, [Algorithm::HS512, Algorithm::HS256]);
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        let error = config(&[("JWT_LEEWAY_SECONDS", "soon")]).expect_err("refused");
        assert!(
            error.to_string().starts_with("JWT_LEEWAY_SECONDS"),
            "{error}"
        );
        let error = config(&[("RUN_MIGRATIONS", "maybe")]).expect_err("refused");
        assert!(error.to_string().contains("RUN_MIGRATIONS"), "{error}");
    }

    #[test]
    fn the_secret_is_used_as_raw_bytes() {
        let config = config(&[("JWT_SECRET", " padded secret ")]).expect("valid");
        let secret = config
            .jwt
            .secret
            .as_ref()
            .map(|s| s.expose_secret().to_vec());
        assert_eq!(secret.as_deref(), Some(&b" padded secret "[..]));
    }

    #[test]
    fn logging_settings_are_checked() {
        let error = config(&[("RUST_LOG", "info,[[[")]).expect_err("refused");
        assert!(error.to_string().starts_with("RUST_LOG"), "{error}");
        assert_eq!(
            config(&[("RUST_LOG", "  ")]).expect("valid").logging.filter,
            DEFAULT_LOG_FILTER
        );
    }

    #[test]
    fn audiences_are_a_comma_separated_list() {
        let config = config(&[("JWT_SECRET", "s"), ("JWT_AUDIENCE", "a, b,,c")]).expect("valid");
        assert_eq!(config.jwt.audience, ["a", "b", "c"]);
    }

    #[test]
    fn a_key_set_url_is_checked_and_defaults_to_rs256() {
        let url = "https://idp.example/realms/r/protocol/openid-connect/certs";
        let only = config(&[("JWT_JWKS_URL", url)]).expect("valid");
        let jwks = only.jwt.jwks.as_ref().expect("a key set");
        assert_eq!(jwks.url.as_str(), url);
        assert_eq!(jwks.refresh, Duration::from_secs(300));
        assert_eq!(jwks.min_refetch, Duration::from_secs(10));
        assert_eq!(jwks.min_rsa_bits, 0);
        assert_eq!(only.jwt.algorithms, [Algorithm::RS256]);
        assert!(only.jwt.secret.is_none(), "no development secret is made");

        // With a secret too: HS256 with the secret, RS256 with the set.
        let both = config(&[("JWT_JWKS_URL", url), ("JWT_SECRET", "s")]).expect("valid");
        assert_eq!(both.jwt.algorithms, [Algorithm::HS256, Algorithm::RS256]);

        let production = config(&[("JWT_JWKS_URL", url), ("APP_ENV", "production")])
            .expect("a key set is a key");
        assert_eq!(production.jwt.jwks.expect("set").min_rsa_bits, 2048);

        let tuned = config(&[
            ("JWT_JWKS_URL", "http://127.0.0.1:9/jwks"),
            ("JWT_JWKS_REFRESH_SECONDS", "60"),
            ("JWT_JWKS_MIN_REFETCH_SECONDS", "1"),
            ("JWT_ALGORITHMS", "ES256,EdDSA"),
        ])
        .expect("valid");
        let jwks = tuned.jwt.jwks.expect("set");
        assert_eq!(jwks.refresh, Duration::from_secs(60));
        assert_eq!(jwks.min_refetch, Duration::from_secs(1));
        assert_eq!(tuned.jwt.algorithms, [Algorithm::ES256, Algorithm::EdDSA]);
    }

    #[test]
    fn bad_key_set_settings_are_one_line_refusals() {
        let url = "https://idp.example/jwks";
        let cases: [(&[(&str, &str)], &str); 7] = [
            (
                &[
                    ("JWT_JWKS_URL", url),
                    ("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem"),
                ],
                "JWT_JWKS_URL and JWT_PUBLIC_KEY_FILE are both set",
            ),
            (
                &[("JWT_JWKS_URL", "ftp://idp.example/jwks")],
                "scheme 'ftp'",
            ),
            (
                &[("JWT_JWKS_URL", "idp.example/jwks")],
                "JWT_JWKS_URL is not a URL",
            ),
            (
                &[("JWT_JWKS_URL", "file:///etc/jwks.json")],
                "scheme 'file'",
            ),
            (
                &[("JWT_JWKS_URL", url), ("JWT_JWKS_REFRESH_SECONDS", "0")],
                "JWT_JWKS_REFRESH_SECONDS must be between 1 and 86400, got 0",
            ),
            (
                &[("JWT_JWKS_URL", url), ("JWT_JWKS_MIN_REFETCH_SECONDS", "0")],
                "JWT_JWKS_MIN_REFETCH_SECONDS must be between 1 and 86400, got 0",
            ),
            (
                &[("JWT_JWKS_URL", url), ("JWT_ALGORITHMS", "HS256")],
                "JWT_ALGORITHMS lists HS256 but JWT_SECRET is not set",
            ),
        ];
        for (pairs, expected) in cases {
            let line = config(pairs).expect_err("refused").to_string();
            assert!(line.contains(expected), "{pairs:?}: {line}");
            assert!(!line.contains('\n'), "{line}");
        }
        // A URL's credentials never appear in a refusal.
        let line = config(&[("JWT_JWKS_URL", "gopher://user:hunter2@idp.example/")])
            .expect_err("refused")
            .to_string();
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = config(&[("JWT_SECRET", "hunter2-hunter2")]).expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let with_url = self::config(&[(
            "JWT_JWKS_URL",
            "https://client:hunter2@idp.example/jwks?key=hunter2",
        )])
        .expect("valid");
        let printed = format!("{with_url:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}

#[cfg(test)]
mod trace_settings_tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<TraceSettings>, ConfigError> {
        let lookup = |key: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| (*value).to_owned())
        };
        read_traces(&Env(&lookup))
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_disabled() {
        assert_eq!(read(&[]).expect("valid"), None);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(
            read(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).expect("valid"),
            None
        );
        assert_eq!(
            read(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).expect("valid"),
            None
        );
    }

    #[test]
    fn an_endpoint_exports_over_http_protobuf_as_chat_api_by_default() {
        let settings = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")])
            .expect("valid")
            .expect("exporting");
        assert_eq!(settings.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(settings.service_name, "chat-api");
        let grpc = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "chats"),
        ])
        .expect("valid")
        .expect("exporting");
        assert_eq!(grpc.protocol, OtlpProtocol::Grpc);
        assert_eq!(grpc.service_name, "chats");
    }

    #[test]
    fn unsupported_protocols_and_exporters_refuse_to_start() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let error =
            read(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).expect_err("refused");
        assert!(
            error.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{error}"
        );
        let error = read(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).expect_err("refused");
        assert!(
            error.to_string().contains("OTEL_TRACES_EXPORTER"),
            "{error}"
        );
    }
}
