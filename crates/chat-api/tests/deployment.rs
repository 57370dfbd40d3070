//! The container files operators use: `Dockerfile`, `.dockerignore` and
//! `docker-compose.yml` at the workspace root. No Docker engine is needed: the
//! compose file is parsed and held to what the documentation promises, the
//! Dockerfile is read instruction by instruction, its health check is run against
//! a fake server and against the real binary, and the compose environment is fed
//! to the service's own configuration parser.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_api::config::{AppEnv, Config};
use yaml_rust2::{Yaml, YamlLoader};

const DOCKERFILE: &str = include_str!("../../../Dockerfile");
const DOCKERIGNORE: &str = include_str!("../../../.dockerignore");
const COMPOSE: &str = include_str!("../../../docker-compose.yml");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");
const CONFIG_SOURCE: &str = include_str!("../src/config.rs");
const TELEMETRY_SOURCE: &str = include_str!("../src/telemetry.rs");
const BINARY: &str = env!("CARGO_BIN_EXE_chat-api");

/// A JWT secret long enough for `APP_ENV=production` (32 bytes and more).
const GOOD_SECRET: &str = "0123456789abcdef0123456789abcdef-compose";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

// ---------------------------------------------------------------------------
// Reading the Dockerfile
// ---------------------------------------------------------------------------

/// One Dockerfile instruction, continuation lines joined and comments dropped.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions() -> Vec<Instruction> {
    let mut parsed = Vec::new();
    let mut pending = String::new();
    for line in DOCKERFILE.lines() {
        let trimmed = line.trim();
        // Docker drops comment lines, also inside a continued instruction.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, args) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((pending.as_str(), ""));
        parsed.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_owned(),
        });
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    parsed
}

/// The instructions of the last stage (the image that ships).
fn runtime_stage(all: &[Instruction]) -> &[Instruction] {
    let last_from = all
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("a FROM");
    &all[last_from..]
}

fn position(all: &[Instruction], what: &str, predicate: impl Fn(&Instruction) -> bool) -> usize {
    all.iter()
        .position(predicate)
        .unwrap_or_else(|| panic!("the Dockerfile has no {what}"))
}

/// An exec-form (JSON array) argument list.
fn exec_form(text: &str) -> Vec<String> {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|error| panic!("not an exec-form JSON array ({error}): {text}"))
}

fn single<'a>(stage: &'a [Instruction], keyword: &str) -> &'a Instruction {
    let found: Vec<_> = stage.iter().filter(|i| i.keyword == keyword).collect();
    assert_eq!(
        found.len(),
        1,
        "the runtime stage has exactly one {keyword}: {found:?}"
    );
    found[0]
}

/// `ENV a=b c=d` of the runtime stage, as a map.
fn image_env() -> BTreeMap<String, String> {
    let all = instructions();
    let mut env = BTreeMap::new();
    for instruction in runtime_stage(&all).iter().filter(|i| i.keyword == "ENV") {
        for pair in instruction.args.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV uses the key=value form: {pair}"));
            env.insert(key.to_owned(), value.trim_matches('"').to_owned());
        }
    }
    env
}

/// The HEALTHCHECK's options (`--interval=10s`, …) and its exec-form command.
fn image_healthcheck() -> (BTreeMap<String, String>, Vec<String>) {
    let all = instructions();
    let healthcheck = single(runtime_stage(&all), "HEALTHCHECK");
    let (options, command) = healthcheck
        .args
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD [...]");
    let options = options
        .split_whitespace()
        .map(|option| {
            let (key, value) = option
                .trim_start_matches("--")
                .split_once('=')
                .unwrap_or_else(|| panic!("HEALTHCHECK option --key=value: {option}"));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    (options, exec_form(command))
}

// ---------------------------------------------------------------------------
// Reading the compose file
// ---------------------------------------------------------------------------

fn compose() -> Yaml {
    let mut documents = YamlLoader::load_from_str(COMPOSE).expect("docker-compose.yml is YAML");
    assert_eq!(documents.len(), 1, "docker-compose.yml is one document");
    documents.remove(0)
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(service.is_hash(), "docker-compose.yml has a service {name}");
    service
}

fn text<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what} is a string, got {node:?}"))
}

/// A compose `environment`, in either of its forms (mapping or `KEY=VALUE` list),
/// before interpolation.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    let node = &service["environment"];
    let scalar = |value: &Yaml| match value {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        Yaml::Null => String::new(),
        other => panic!("an environment value is a scalar, got {other:?}"),
    };
    if let Some(map) = node.as_hash() {
        map.iter()
            .map(|(key, value)| (text(key, "a variable name").to_owned(), scalar(value)))
            .collect()
    } else if let Some(list) = node.as_vec() {
        list.iter()
            .map(|item| {
                let item = text(item, "an environment entry");
                let (key, value) = item.split_once('=').unwrap_or((item, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect()
    } else {
        panic!("the service has an environment: {service:?}")
    }
}

/// Compose's interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`,
/// `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`, with `shell` as the
/// operator's environment. `Err` carries the error compose would stop with.
fn interpolate(raw: &str, shell: &BTreeMap<&str, &str>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {raw}"))?;
            let expression = &after[..end];
            rest = &after[end + 1..];
            let name_end = expression
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expression.len());
            let (name, operator) = expression.split_at(name_end);
            let set = shell.get(name).copied();
            let set_nonempty = set.filter(|value| !value.is_empty());
            let value = if operator.is_empty() {
                set.unwrap_or_default().to_owned()
            } else if let Some(default) = operator.strip_prefix(":-") {
                set_nonempty.unwrap_or(default).to_owned()
            } else if let Some(default) = operator.strip_prefix('-') {
                set.unwrap_or(default).to_owned()
            } else if let Some(message) = operator.strip_prefix(":?") {
                set_nonempty
                    .ok_or_else(|| {
                        format!("required variable {name} is missing a value: {message}")
                    })?
                    .to_owned()
            } else if let Some(message) = operator.strip_prefix('?') {
                set.ok_or_else(|| {
                    format!("required variable {name} is missing a value: {message}")
                })?
                .to_owned()
            } else {
                return Err(format!("unsupported interpolation ${{{expression}}}"));
            };
            out.push_str(&value);
        } else {
            let name_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_end == 0 {
                return Err(format!("a lone $ in {raw} (write $$)"));
            }
            out.push_str(shell.get(&rest[..name_end]).copied().unwrap_or_default());
            rest = &rest[name_end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A service's environment as the container would see it.
fn resolved_environment(
    service: &Yaml,
    shell: &BTreeMap<&str, &str>,
) -> Result<BTreeMap<String, String>, String> {
    environment(service)
        .into_iter()
        .map(|(key, value)| Ok((key, interpolate(&value, shell)?)))
        .collect()
}

fn operator_shell() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("JWT_SECRET", GOOD_SECRET)])
}

/// A compose duration (`1m30s`, `35s`, `500ms`).
fn duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    assert!(!rest.is_empty(), "an empty duration");
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or_else(|| panic!("a duration needs a unit: {text}"));
        let number: u64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("a duration starts with a number: {text}"));
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += match &rest[..unit_end] {
            "h" => Duration::from_secs(number * 3_600),
            "m" => Duration::from_secs(number * 60),
            "s" => Duration::from_secs(number),
            "ms" => Duration::from_millis(number),
            "us" => Duration::from_micros(number),
            unit => panic!("unknown duration unit {unit} in {text}"),
        };
        rest = &rest[unit_end..];
    }
    total
}

/// The values after each `flag` in an argument list.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

fn string_list(node: &Yaml, what: &str) -> Vec<String> {
    node.as_vec()
        .unwrap_or_else(|| panic!("{what} is a list, got {node:?}"))
        .iter()
        .map(|item| text(item, what).to_owned())
        .collect()
}

/// The variable names the service reads: every `"UPPER_CASE"` string literal
/// in the non-test part of config.rs.
fn variables_the_service_reads() -> BTreeSet<String> {
    let code = CONFIG_SOURCE
        .split("#[cfg(test)]")
        .next()
        .expect("config.rs has code");
    let names: BTreeSet<String> = code
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| {
            literal.len() > 2
                && literal.starts_with(|c: char| c.is_ascii_uppercase())
                && literal
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    for expected in ["DATABASE_URL", "JWT_SECRET", "APP_ENV", "BIND_ADDRESS"] {
        assert!(
            names.contains(expected),
            "config.rs no longer reads {expected}? found {names:?}"
        );
    }
    names
}

// ---------------------------------------------------------------------------
// Compose: services, ordering, database, secrets, health, shutdown
// ---------------------------------------------------------------------------

#[test]
fn compose_declares_postgres_migrate_and_the_service_without_a_version_key() {
    let compose = compose();
    assert!(
        compose["version"].is_badvalue(),
        "the compose specification has no `version:` key"
    );
    let services: BTreeSet<&str> = compose["services"]
        .as_hash()
        .expect("a services mapping")
        .keys()
        .map(|key| text(key, "a service name"))
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["chat-api", "migrate", "postgres"])
    );
    assert_eq!(
        text(&service(&compose, "postgres")["image"], "postgres image"),
        "postgres:15-alpine"
    );
    for name in ["chat-api", "migrate"] {
        assert_eq!(
            text(&service(&compose, name)["build"], "build"),
            ".",
            "{name} is built from the Dockerfile at the root"
        );
    }
    // Every interpolation in the file is well formed once JWT_SECRET is given.
    let shell = operator_shell();
    for line in COMPOSE
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        interpolate(line, &shell).unwrap_or_else(|error| panic!("{error}: {line}"));
    }
}

#[test]
fn postgres_is_healthy_only_when_pg_isready_answers_for_the_chat_database() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    let env = resolved_environment(postgres, &operator_shell()).expect("interpolates");
    assert_eq!(env.get("POSTGRES_DB").map(String::as_str), Some("chat"));
    assert!(
        env.get("POSTGRES_USER")
            .is_some_and(|user| !user.is_empty())
    );
    assert!(
        env.get("POSTGRES_PASSWORD")
            .is_some_and(|password| !password.is_empty())
    );

    let healthcheck = &postgres["healthcheck"];
    let test = string_list(&healthcheck["test"], "postgres healthcheck test");
    assert!(
        test[0] == "CMD" || test[0] == "CMD-SHELL",
        "healthcheck test starts with CMD or CMD-SHELL: {test:?}"
    );
    let argv: Vec<String> = if test[0] == "CMD" {
        test[1..].to_vec()
    } else {
        test[1].split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(argv[0], "pg_isready", "{test:?}");
    assert_eq!(
        flag_value(&argv, "-U"),
        env.get("POSTGRES_USER").map(String::as_str)
    );
    assert_eq!(flag_value(&argv, "-d"), Some("chat"));
    for key in ["interval", "timeout"] {
        duration(text(&healthcheck[key], key));
    }
    assert!(
        healthcheck["retries"].as_i64().is_some_and(|n| n >= 3),
        "retries: {:?}",
        healthcheck["retries"]
    );

    // The data lives in a named volume, declared at the top level.
    let volumes = string_list(&postgres["volumes"], "postgres volumes");
    let volume = volumes
        .iter()
        .find_map(|mount| mount.strip_suffix(":/var/lib/postgresql/data"))
        .expect("a volume on /var/lib/postgresql/data");
    assert!(
        compose["volumes"]
            .as_hash()
            .is_some_and(|declared| declared.contains_key(&Yaml::String(volume.to_owned()))),
        "the volume {volume} is declared under the top-level volumes"
    );
}

#[test]
fn the_service_starts_after_a_healthy_postgres_and_a_successful_migration() {
    let compose = compose();
    let chat_api = service(&compose, "chat-api");
    let depends_on = &chat_api["depends_on"];
    assert_eq!(
        text(&depends_on["postgres"]["condition"], "postgres condition"),
        "service_healthy"
    );
    assert_eq!(
        text(&depends_on["migrate"]["condition"], "migrate condition"),
        "service_completed_successfully"
    );
    assert_eq!(
        string_list(&chat_api["command"], "chat-api command"),
        ["serve"]
    );
    assert_eq!(text(&chat_api["restart"], "restart"), "unless-stopped");

    let migrate = service(&compose, "migrate");
    assert_eq!(
        string_list(&migrate["command"], "migrate command"),
        ["migrate"]
    );
    assert_eq!(
        migrate["restart"],
        Yaml::String("no".to_owned()),
        "restart is the string \"no\" (a bare no is a YAML 1.1 boolean)"
    );
    assert_eq!(
        text(&migrate["depends_on"]["postgres"]["condition"], "condition"),
        "service_healthy"
    );
    assert!(
        migrate["ports"].is_badvalue(),
        "the one-shot publishes nothing"
    );

    // Only the one-shot migrates: the server does not, so replicas never race.
    let served = resolved_environment(chat_api, &operator_shell()).expect("interpolates");
    assert_eq!(
        served.get("RUN_MIGRATIONS").map(String::as_str),
        Some("false")
    );
    // Both talk to the same database with the same settings.
    let migrating = resolved_environment(migrate, &operator_shell()).expect("interpolates");
    for key in ["DATABASE_URL", "APP_ENV", "LOG_FORMAT"] {
        assert_eq!(migrating.get(key), served.get(key), "{key} differs");
    }
}

#[test]
fn port_8080_is_published_where_the_service_listens() {
    let compose = compose();
    let chat_api = service(&compose, "chat-api");
    let ports = string_list(&chat_api["ports"], "chat-api ports");
    assert!(
        ports.iter().any(|port| port == "8080:8080"),
        "8080:8080 is published: {ports:?}"
    );
    let env = resolved_environment(chat_api, &operator_shell()).expect("interpolates");
    let bind = env
        .get("BIND_ADDRESS")
        .cloned()
        .or_else(|| image_env().get("BIND_ADDRESS").cloned())
        .expect("a BIND_ADDRESS in compose or the image");
    assert!(
        bind.starts_with("0.0.0.0:") || bind.starts_with("[::]:"),
        "listens on every interface inside the container: {bind}"
    );
    assert!(bind.ends_with(":8080"), "{bind}");
}

#[test]
fn database_url_points_at_the_postgres_service_and_its_credentials() {
    let compose = compose();
    for (password, shell) in [
        ("chat", operator_shell()),
        (
            "an0ther-pw",
            BTreeMap::from([
                ("JWT_SECRET", GOOD_SECRET),
                ("POSTGRES_PASSWORD", "an0ther-pw"),
            ]),
        ),
    ] {
        let postgres =
            resolved_environment(service(&compose, "postgres"), &shell).expect("interpolates");
        let env =
            resolved_environment(service(&compose, "chat-api"), &shell).expect("interpolates");
        let raw = env.get("DATABASE_URL").expect("DATABASE_URL is set");
        let url = url::Url::parse(raw).expect("DATABASE_URL is a URL");
        assert_eq!(url.scheme(), "postgres", "{raw}");
        assert_eq!(url.host_str(), Some("postgres"), "the compose service name");
        assert_eq!(url.port_or_known_default().or(url.port()), Some(5432));
        assert_eq!(url.path(), "/chat", "{raw}");
        assert_eq!(
            Some(url.username()),
            postgres.get("POSTGRES_USER").map(String::as_str)
        );
        assert_eq!(url.password(), Some(password));
        assert_eq!(
            postgres.get("POSTGRES_PASSWORD").map(String::as_str),
            Some(password)
        );
        assert_eq!(
            Some(url.path().trim_start_matches('/')),
            postgres.get("POSTGRES_DB").map(String::as_str)
        );
    }
}

#[test]
fn production_mode_and_a_required_jwt_secret() {
    let compose = compose();
    for name in ["chat-api", "migrate"] {
        let raw = environment(service(&compose, name));
        assert_eq!(raw.get("APP_ENV").map(String::as_str), Some("production"));
        assert_eq!(raw.get("LOG_FORMAT").map(String::as_str), Some("json"));
        // The server needs the key; `migrate` may do without, but if it gets one
        // it is the same, required one.
        let Some(secret) = raw.get("JWT_SECRET") else {
            assert_eq!(name, "migrate", "chat-api sets JWT_SECRET");
            continue;
        };
        assert!(
            secret.starts_with("${JWT_SECRET:?") && secret.ends_with('}'),
            "{name}: JWT_SECRET comes from ${{JWT_SECRET:?...}}, got {secret}"
        );
        assert!(secret.contains("32"), "the message says how long: {secret}");

        // Compose refuses to start without it, or with it empty...
        for shell in [BTreeMap::new(), BTreeMap::from([("JWT_SECRET", "")])] {
            let error = resolved_environment(service(&compose, name), &shell)
                .expect_err("refused without JWT_SECRET");
            assert!(error.contains("JWT_SECRET"), "{error}");
        }
        // ...and passes it through untouched.
        let env =
            resolved_environment(service(&compose, name), &operator_shell()).expect("accepted");
        assert_eq!(env.get("JWT_SECRET").map(String::as_str), Some(GOOD_SECRET));
    }
}

#[test]
fn the_service_healthcheck_is_the_images_and_hits_health_live() {
    let compose = compose();
    let chat_api = service(&compose, "chat-api");
    let healthcheck = &chat_api["healthcheck"];
    let test = string_list(&healthcheck["test"], "chat-api healthcheck test");
    assert_eq!(test[0], "CMD", "exec form: {test:?}");
    assert!(
        test.iter().any(|arg| arg.contains("/health/live")),
        "{test:?}"
    );

    // Compose reads `$$` as a literal `$`; after that it is the image's command.
    let shell = BTreeMap::new();
    let mirrored: Vec<String> = test[1..]
        .iter()
        .map(|arg| interpolate(arg, &shell).expect("only $$ escapes"))
        .collect();
    let (options, image_command) = image_healthcheck();
    assert_eq!(mirrored, image_command);
    for key in ["interval", "timeout", "start_period"] {
        let option = key.replace('_', "-");
        assert_eq!(
            duration(text(&healthcheck[key], key)),
            duration(options.get(&option).expect("the Dockerfile sets it")),
            "{key} matches the Dockerfile's --{option}"
        );
    }
    assert_eq!(
        healthcheck["retries"]
            .as_i64()
            .map(|n| n.to_string())
            .as_ref(),
        options.get("retries")
    );
}

#[test]
fn stop_grace_period_outlasts_the_shutdown_grace() {
    let compose = compose();
    let chat_api = service(&compose, "chat-api");
    let env = resolved_environment(chat_api, &operator_shell()).expect("interpolates");
    // The service's own default applies when compose does not set it.
    let grace = Duration::from_secs(env.get("SHUTDOWN_GRACE_SECONDS").map_or(30, |seconds| {
        seconds.parse().expect("SHUTDOWN_GRACE_SECONDS is a number")
    }));
    let stop = duration(text(&chat_api["stop_grace_period"], "stop_grace_period"));
    assert!(
        stop > grace,
        "stop_grace_period {stop:?} must exceed SHUTDOWN_GRACE_SECONDS {grace:?}, or SIGKILL cuts requests in flight"
    );
    if !chat_api["stop_signal"].is_badvalue() {
        assert_eq!(text(&chat_api["stop_signal"], "stop_signal"), "SIGTERM");
    }
}

#[test]
fn every_variable_compose_sets_is_one_the_service_reads() {
    let mut known = variables_the_service_reads();
    // RUST_LOG is read either with the rest of the configuration or by
    // tracing-subscriber's EnvFilter in telemetry.rs.
    if !known.contains("RUST_LOG") {
        assert!(
            TELEMETRY_SOURCE.contains("EnvFilter::try_from_default_env"),
            "nothing reads RUST_LOG any more"
        );
        known.insert("RUST_LOG".to_owned());
    }
    let compose = compose();
    for name in ["chat-api", "migrate"] {
        for key in environment(service(&compose, name)).keys() {
            assert!(
                known.contains(key),
                "{name} sets {key}, which the service never reads (a typo?); it reads {known:?}"
            );
        }
    }
    for key in image_env().keys() {
        assert!(
            known.contains(key),
            "the image sets {key}, which the service never reads"
        );
    }
}

#[test]
fn the_compose_environment_is_a_valid_production_configuration() {
    let compose = compose();
    let env = resolved_environment(service(&compose, "chat-api"), &operator_shell())
        .expect("interpolates");
    let asked = std::cell::RefCell::new(BTreeSet::new());
    let config = Config::from_lookup(|key| {
        asked.borrow_mut().insert(key.to_owned());
        env.get(key).cloned()
    })
    .expect("the compose environment is accepted");
    assert_eq!(config.app_env, AppEnv::Production);
    assert!(format!("{config:?}").contains("Json"), "LOG_FORMAT=json");
    assert_eq!(config.bind_address.port(), 8080);
    assert!(!config.run_migrations);
    assert!(!config.jwt.generated_secret);
    assert!(config.database_url().starts_with("postgres://"));
    for key in env.keys().filter(|key| *key != "RUST_LOG") {
        assert!(
            asked.borrow().contains(key),
            "the service never asked for {key}"
        );
    }

    // The image alone (its ENV, no key) refuses to start, as production must.
    let image = image_env();
    let error = Config::from_lookup(|key| image.get(key).cloned()).expect_err("no JWT key");
    assert!(error.to_string().contains("JWT"), "{error}");
    // A secret one byte short of 32 is refused too.
    let mut short = env.clone();
    short.insert("JWT_SECRET".to_owned(), "x".repeat(31));
    assert!(Config::from_lookup(|key| short.get(key).cloned()).is_err());
}

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

#[test]
fn dockerfile_is_multi_stage_with_a_recent_enough_rust() {
    let all = instructions();
    let froms: Vec<&Instruction> = all.iter().filter(|i| i.keyword == "FROM").collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let builder = &froms[0].args;
    let (image, stage) = builder.split_once(" AS ").expect("FROM <image> AS builder");
    assert_eq!(stage.trim(), "builder");
    let version = image
        .strip_prefix("rust:")
        .expect("the official rust image")
        .split('-')
        .next()
        .expect("a version");
    let parse = |v: &str| -> Vec<u32> {
        v.split('.')
            .map(|part| part.parse().expect("a numeric version"))
            .collect()
    };
    let required = WORKSPACE_MANIFEST
        .lines()
        .find_map(|line| line.trim().strip_prefix("rust-version = "))
        .expect("workspace rust-version")
        .trim_matches('"');
    assert!(
        parse(version) >= parse(required),
        "rust:{version} builds a workspace that needs {required}"
    );

    let runtime = runtime_stage(&all);
    assert!(
        runtime[0].args.starts_with("debian:bookworm-slim"),
        "{:?}",
        runtime[0]
    );
    assert!(
        runtime.iter().any(|i| i.keyword == "COPY"
            && i.args.starts_with("--from=builder ")
            && i.args.ends_with(" /usr/local/bin/chat-api")),
        "the binary comes from the builder"
    );
    assert!(
        !runtime
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo")),
        "nothing is built in the runtime stage"
    );
    let apt = runtime
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("apt-get install"))
        .expect("the runtime installs CA certificates");
    assert!(apt.args.contains("ca-certificates"));
    assert!(apt.args.contains("--no-install-recommends"));
    assert!(apt.args.contains("rm -rf /var/lib/apt/lists/*"));
}

#[test]
fn dockerfile_runs_as_a_non_root_user_in_a_writable_directory() {
    let all = instructions();
    let runtime = runtime_stage(&all);
    let user = &single(runtime, "USER").args;
    let uid = user.split(':').next().expect("a user");
    assert!(
        uid != "root" && uid != "0" && uid.parse::<u32>().is_ok_and(|n| n >= 1000),
        "a fixed, unprivileged numeric uid: USER {user}"
    );
    let workdir = &single(runtime, "WORKDIR").args;
    assert!(
        runtime.iter().any(|i| i.keyword == "RUN"
            && i.args.contains(&format!("-o {uid}"))
            && i.args.contains(workdir.as_str())),
        "WORKDIR {workdir} is created owned by {uid} (./chat.db is written there)"
    );
}

#[test]
fn dockerfile_exposes_8080_and_sets_the_production_environment() {
    let all = instructions();
    let runtime = runtime_stage(&all);
    assert_eq!(single(runtime, "EXPOSE").args, "8080");
    let env = image_env();
    assert_eq!(
        env.get("BIND_ADDRESS").map(String::as_str),
        Some("0.0.0.0:8080")
    );
    assert_eq!(env.get("LOG_FORMAT").map(String::as_str), Some("json"));
    assert_eq!(env.get("APP_ENV").map(String::as_str), Some("production"));
    assert_eq!(
        exec_form(&single(runtime, "ENTRYPOINT").args),
        ["/usr/local/bin/chat-api"]
    );
    assert_eq!(exec_form(&single(runtime, "CMD").args), ["serve"]);
    assert_eq!(single(runtime, "STOPSIGNAL").args, "SIGTERM");
    let labels = runtime
        .iter()
        .filter(|i| i.keyword == "LABEL")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for label in ["title", "description", "version", "licenses", "source"] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{label}=")),
            "LABEL org.opencontainers.image.{label}"
        );
    }
}

#[test]
fn dockerfile_healthcheck_hits_health_live_without_curl() {
    let (options, command) = image_healthcheck();
    assert!(
        command.iter().any(|arg| arg.contains("/health/live")),
        "{command:?}"
    );
    assert_eq!(
        command[0], "bash",
        "bash ships with debian-slim: {command:?}"
    );
    for option in ["interval", "timeout", "start-period", "retries"] {
        assert!(options.contains_key(option), "HEALTHCHECK --{option}");
    }
    assert!(
        duration(&options["timeout"]) < duration(&options["interval"]),
        "{options:?}"
    );
}

/// The manifest paths of one workspace member's lib and bin targets.
fn target_sources(member: &str) -> Vec<String> {
    let dir = workspace_root().join(member);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap_or_else(|error| panic!("{member}/Cargo.toml: {error}"));
    let mut section = String::new();
    let mut explicit = Vec::new();
    let mut has_lib_section = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            has_lib_section |= section == "[lib]";
            continue;
        }
        if (section == "[lib]" || section == "[[bin]]")
            && let Some(path) = line.strip_prefix("path")
        {
            let path = path
                .trim_start()
                .strip_prefix('=')
                .expect("path = \"...\"")
                .trim()
                .trim_matches('"');
            explicit.push(path.to_owned());
        }
    }
    let mut sources = explicit;
    // Cargo's defaults, for a target with no explicit path.
    for default in ["src/lib.rs", "src/main.rs"] {
        if dir.join(default).exists() && !sources.iter().any(|path| path == default) {
            sources.push(default.to_owned());
        }
    }
    assert!(
        !sources.is_empty() || has_lib_section,
        "{member} has a target"
    );
    sources
}

fn workspace_members() -> Vec<String> {
    let start = WORKSPACE_MANIFEST
        .find("members = [")
        .expect("workspace members");
    let list = &WORKSPACE_MANIFEST[start + "members = [".len()..];
    let list = &list[..list.find(']').expect("the members list ends")];
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[test]
fn dockerfile_caches_dependencies_with_stubs_for_every_member() {
    let all = instructions();
    let builds: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "RUN" && i.args.contains("cargo build"))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(builds.len(), 2, "a dependency build, then the real one");
    for &at in &builds {
        let args = &all[at].args;
        for flag in ["--release", "--locked", "-p chat-api"] {
            assert!(args.contains(flag), "cargo build {flag}: {args}");
        }
    }
    let lock = position(&all, "COPY of Cargo.lock", |i| {
        i.keyword == "COPY" && i.args.split_whitespace().any(|arg| arg == "Cargo.lock")
    });
    let sources = position(&all, "COPY of the sources", |i| {
        i.keyword == "COPY" && i.args == "crates crates"
    });
    assert!(
        lock < builds[0] && builds[0] < sources && sources < builds[1],
        "Cargo.lock and the manifests, then the dependency build, then the sources, then the build"
    );
    assert!(
        all[builds[1]].args.contains("touch"),
        "the real sources are touched so cargo rebuilds over the stubs"
    );

    let members = workspace_members();
    assert_eq!(members.len(), 5, "{members:?}");
    let stub_step = &all[builds[0]].args;
    for member in &members {
        assert!(
            all[..builds[0]].iter().any(
                |i| i.keyword == "COPY" && i.args.starts_with(&format!("{member}/Cargo.toml "))
            ),
            "{member}/Cargo.toml is copied before the dependency build"
        );
        for source in target_sources(member) {
            assert!(
                stub_step.contains(&format!("{member}/{source}")),
                "the stub step creates {member}/{source}"
            );
        }
        let top = member.split('/').next().expect("a path");
        assert!(
            all[sources..builds[1]]
                .iter()
                .any(|i| i.keyword == "COPY" && i.args == format!("{top} {top}")),
            "{member}'s sources are copied (COPY {top} {top})"
        );
    }
    assert!(
        stub_step.contains("echo 'fn main() {}' > crates/chat-api/src/main.rs"),
        "the binary's stub has a main"
    );
    // Everything up to the dependency build copies manifests only.
    for instruction in all[..builds[0]].iter().filter(|i| i.keyword == "COPY") {
        assert!(
            instruction
                .args
                .split_whitespace()
                .all(|arg| arg.ends_with("Cargo.toml")
                    || arg.ends_with("Cargo.toml/")
                    || arg == "Cargo.lock"
                    || arg == "./"),
            "only manifests before the dependency build: COPY {}",
            instruction.args
        );
    }
}

#[test]
fn dockerignore_keeps_the_context_small_but_complete() {
    let patterns: BTreeSet<&str> = DOCKERIGNORE
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/'))
        .collect();
    for excluded in ["target", ".git", "*.db", ".env", "bench"] {
        assert!(
            patterns.contains(excluded),
            ".dockerignore excludes {excluded}"
        );
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "migration",
        "crates/*/src",
        "src",
    ] {
        assert!(
            !patterns.contains(needed),
            ".dockerignore must not exclude {needed}"
        );
    }
    // tests/ and *.md are left out of the context: no source may include them.
    for member in workspace_members() {
        for file in rust_files(&workspace_root().join(&member).join("src")) {
            let code = std::fs::read_to_string(&file).expect("readable source");
            for include in ["include_str!(", "include_bytes!("] {
                for (at, _) in code.match_indices(include) {
                    let argument = &code[at..code[at..].find(')').map_or(code.len(), |e| at + e)];
                    assert!(
                        !argument.contains("tests/") && !argument.contains(".md"),
                        "{} includes a file the image's build context leaves out: {argument}",
                        file.display()
                    );
                }
            }
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

// ---------------------------------------------------------------------------
// The health check, run for real (bash here stands in for the image's bash)
// ---------------------------------------------------------------------------

/// Runs the image's HEALTHCHECK command with `BIND_ADDRESS` set as in a container.
fn run_healthcheck(bind_address: &str) -> std::process::ExitStatus {
    let (_, command) = image_healthcheck();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIND_ADDRESS", bind_address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs the health check");
    // Docker's --timeout, here.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the health check hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A one-shot HTTP server answering `status`; returns its port and the request head it got.
fn fake_server(status: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut head = Vec::new();
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let _ = stream.write_all(
            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        );
        let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
    });
    (port, receiver)
}

#[test]
fn the_healthcheck_passes_on_200_only() {
    let (port, request) = fake_server("200 OK");
    assert!(run_healthcheck(&format!("0.0.0.0:{port}")).success());
    let head = request
        .recv_timeout(Duration::from_secs(5))
        .expect("a request");
    assert!(
        head.starts_with("GET /health/live HTTP/1.1\r\n"),
        "{head:?}"
    );

    let (port, _request) = fake_server("503 Service Unavailable");
    assert!(!run_healthcheck(&format!("0.0.0.0:{port}")).success());

    // Nothing listening: a refused connection fails, it does not hang.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    assert!(!run_healthcheck(&format!("0.0.0.0:{closed}")).success());
}

#[test]
fn the_migrate_services_environment_is_all_migrate_needs() {
    // Its environment and command as compose gives them, with no JWT key; only
    // the database is a SQLite file here instead of the postgres service.
    let compose = compose();
    let migrate = service(&compose, "migrate");
    let mut env = resolved_environment(migrate, &operator_shell()).expect("interpolates");
    let workdir = tempfile::tempdir().expect("tempdir");
    env.insert(
        "DATABASE_URL".to_owned(),
        format!(
            "sqlite://{}?mode=rwc",
            workdir.path().join("migrated.db").display()
        ),
    );
    let output = Command::new(BINARY)
        .args(string_list(&migrate["command"], "migrate command"))
        .current_dir(workdir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&env)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "migrate with the compose environment: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(workdir.path().join("migrated.db").exists());
}

/// Kills the child if a test fails before stopping it.
#[derive(Debug)]
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_images_environment_and_command_serve_and_pass_the_healthcheck() {
    // The image's ENV, CMD and a fresh working directory, as `docker run` gives them;
    // only the port differs (any free one) and the operator's JWT_SECRET is added.
    let workdir = tempfile::tempdir().expect("tempdir");
    let all = instructions();
    let command = exec_form(&single(runtime_stage(&all), "CMD").args);
    let mut child = Command::new(BINARY);
    child
        .args(&command)
        .current_dir(workdir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(image_env())
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("JWT_SECRET", GOOD_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut running = Running(child.spawn().expect("the binary starts"));

    // LOG_FORMAT=json: the "listening" line is a JSON object carrying the address.
    let stdout = running.0.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                let _ = sender.send(Err(format!("a stdout line is not JSON: {line}")));
                return;
            };
            if event["message"] == "listening"
                && let Some(address) = event["address"].as_str()
            {
                let _ = sender.send(Ok(address.to_owned()));
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("a JSON \"listening\" line on stdout")
        .unwrap_or_else(|error| panic!("{error}"));

    assert!(
        run_healthcheck(&address).success(),
        "the HEALTHCHECK passes against the real service at {address}"
    );
    assert!(
        workdir.path().join("chat.db").exists(),
        "the embedded default writes ./chat.db in the working directory"
    );

    // STOPSIGNAL SIGTERM: a graceful exit with status 0.
    let pid = running.0.id().to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
