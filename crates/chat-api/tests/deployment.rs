//! The container files operators use: `Dockerfile`, `.dockerignore` and
//! `docker-compose.yml` at the workspace root, held to what the documentation
//! promises. No Docker engine is needed: the compose file is read the way compose
//! itself reads it (`docker-compose config` interpolates and normalises it without
//! a daemon; `.ci/run` installs Debian's `docker-compose`), the Dockerfile is read
//! instruction by instruction, its health check is run against a fake server and
//! against the real binary, and the compose environment is fed to the service's
//! own configuration parser.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_api::app::Settings;
use chat_api::config::{AppEnv, Config, LogFormat};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const DOCKERFILE: &str = include_str!("../../../Dockerfile");
const DOCKERIGNORE: &str = include_str!("../../../.dockerignore");
const COMPOSE: &str = include_str!("../../../docker-compose.yml");
const BINARY: &str = env!("CARGO_BIN_EXE_chat-api");

/// A JWT secret long enough for `APP_ENV=production` (32 bytes and more).
const GOOD_SECRET: &str = "0123456789abcdef0123456789abcdef-compose";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// A duration as this repository writes them in the Dockerfile and the compose
/// file: whole seconds (`35s`). Compose and Docker accept more (`1m30s`), but one
/// spelling keeps the comparisons below honest without a parser of our own.
fn seconds(text: &str) -> u64 {
    text.strip_suffix('s')
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("write durations as whole seconds, like 35s; got {text:?}"))
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
// Reading the compose file, through compose itself
// ---------------------------------------------------------------------------

/// `docker-compose config`: the file as compose will run it, interpolated with
/// exactly `shell` as the operator's environment (no inherited variables, no
/// `.env` file). `Err` carries compose's refusal.
fn compose_config(shell: &[(&str, &str)]) -> Result<Yaml, String> {
    let no_env_file = tempfile::NamedTempFile::new().expect("an empty env file");
    let output = Command::new("docker-compose")
        .arg("--env-file")
        .arg(no_env_file.path())
        .arg("--file")
        .arg(workspace_root().join("docker-compose.yml"))
        .arg("config")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(shell.iter().copied())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run docker-compose ({error}): these tests read docker-compose.yml \
                 through it; install it with `apt-get install -y docker-compose` \
                 (.ci/run does), no Docker engine is needed"
            )
        });
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).expect("compose prints UTF-8");
    let mut documents = YamlLoader::load_from_str(&text).expect("compose prints YAML");
    assert_eq!(documents.len(), 1, "one document: {text}");
    Ok(documents.remove(0))
}

/// The compose file as an operator who exported `JWT_SECRET` (and nothing else) runs it.
fn compose() -> Yaml {
    compose_config(&[("JWT_SECRET", GOOD_SECRET)])
        .unwrap_or_else(|error| panic!("docker-compose config refused the file: {error}"))
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

fn scalar(node: &Yaml) -> String {
    match node {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        other => panic!("a scalar, got {other:?}"),
    }
}

/// A service's environment as the container gets it (compose prints a mapping).
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    service["environment"]
        .as_hash()
        .unwrap_or_else(|| panic!("the service has an environment: {service:?}"))
        .iter()
        .map(|(key, value)| (text(key, "a variable name").to_owned(), scalar(value)))
        .collect()
}

fn string_list(node: &Yaml, what: &str) -> Vec<String> {
    node.as_vec()
        .unwrap_or_else(|| panic!("{what} is a list, got {node:?}"))
        .iter()
        .map(|item| text(item, what).to_owned())
        .collect()
}

/// The values after each `flag` in an argument list.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

/// `(published, target)` port pairs, in compose's long form.
fn published_ports(service: &Yaml) -> Vec<(String, String)> {
    service["ports"]
        .as_vec()
        .unwrap_or_else(|| panic!("the service publishes ports: {service:?}"))
        .iter()
        .map(|port| (scalar(&port["published"]), scalar(&port["target"])))
        .collect()
}

// ---------------------------------------------------------------------------
// Compose: services, ordering, database, secrets, health, shutdown
// ---------------------------------------------------------------------------

#[test]
fn compose_runs_postgres_a_one_shot_migrate_and_the_service_built_here() {
    let compose = compose();
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
        let context = text(
            &service(&compose, name)["build"]["context"],
            "build context",
        );
        assert_eq!(
            Path::new(context),
            workspace_root(),
            "{name} is built from the Dockerfile at the root"
        );
    }
    // The compose specification dropped `version:`; Compose v2 warns about it.
    assert!(
        !COMPOSE.lines().any(|line| line.starts_with("version:")),
        "docker-compose.yml has no top-level version key"
    );
}

#[test]
fn postgres_is_healthy_only_when_pg_isready_answers_for_the_chat_database() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    let env = environment(postgres);
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
    assert_eq!(test[0], "CMD", "exec form: {test:?}");
    assert_eq!(test[1], "pg_isready", "{test:?}");
    assert_eq!(
        flag_value(&test, "-U"),
        env.get("POSTGRES_USER").map(String::as_str)
    );
    assert_eq!(flag_value(&test, "-d"), Some("chat"));
    assert!(
        seconds(text(&healthcheck["timeout"], "timeout"))
            < seconds(text(&healthcheck["interval"], "interval"))
    );
    assert!(
        healthcheck["retries"].as_i64().is_some_and(|n| n >= 3),
        "retries: {:?}",
        healthcheck["retries"]
    );

    // The data lives in a named volume, declared at the top level.
    let volumes = string_list(&postgres["volumes"], "postgres volumes");
    let volume = volumes
        .iter()
        .find_map(|mount| {
            mount
                .split_once(":/var/lib/postgresql/data")
                .map(|(name, _)| name)
        })
        .unwrap_or_else(|| panic!("a volume on /var/lib/postgresql/data: {volumes:?}"));
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
        text(&migrate["restart"], "restart"),
        "no",
        "the one-shot is never restarted"
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
    let served = environment(chat_api);
    assert_eq!(
        served.get("RUN_MIGRATIONS").map(String::as_str),
        Some("false")
    );
    // Both talk to the same database with the same settings.
    let migrating = environment(migrate);
    for key in ["DATABASE_URL", "APP_ENV", "LOG_FORMAT"] {
        assert_eq!(migrating.get(key), served.get(key), "{key} differs");
    }
}

#[test]
fn port_8080_is_published_where_the_service_listens() {
    let compose = compose();
    let chat_api = service(&compose, "chat-api");
    let ports = published_ports(chat_api);
    assert!(
        ports.contains(&("8080".to_owned(), "8080".to_owned())),
        "8080 is published on 8080: {ports:?}"
    );
    let bind = environment(chat_api)
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
    for (password, shell) in [
        ("chat", vec![("JWT_SECRET", GOOD_SECRET)]),
        (
            "an0ther-pw",
            vec![
                ("JWT_SECRET", GOOD_SECRET),
                ("POSTGRES_PASSWORD", "an0ther-pw"),
            ],
        ),
    ] {
        let compose = compose_config(&shell).expect("compose accepts the file");
        let postgres = environment(service(&compose, "postgres"));
        for name in ["chat-api", "migrate"] {
            let env = environment(service(&compose, name));
            let raw = env.get("DATABASE_URL").expect("DATABASE_URL is set");
            let url = url::Url::parse(raw).expect("DATABASE_URL is a URL");
            assert_eq!(url.scheme(), "postgres", "{raw}");
            assert_eq!(url.host_str(), Some("postgres"), "the compose service name");
            assert_eq!(url.port(), Some(5432), "{raw}");
            assert_eq!(
                Some(url.username()),
                postgres.get("POSTGRES_USER").map(String::as_str)
            );
            assert_eq!(url.password(), Some(password), "{name}: {raw}");
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
}

#[test]
fn production_mode_and_a_jwt_secret_the_operator_must_supply() {
    // Compose refuses to start without the key, or with it empty, and says why...
    for shell in [vec![], vec![("JWT_SECRET", "")]] {
        let error = compose_config(&shell).expect_err("refused without JWT_SECRET");
        assert!(
            error.contains("set JWT_SECRET (at least 32 bytes)"),
            "the refusal names the variable and its length: {error}"
        );
    }
    // ...and passes the operator's key through: none is written in the file.
    let compose = compose();
    for name in ["chat-api", "migrate"] {
        let env = environment(service(&compose, name));
        assert_eq!(env.get("APP_ENV").map(String::as_str), Some("production"));
        assert_eq!(env.get("LOG_FORMAT").map(String::as_str), Some("json"));
        // `migrate` needs no key; if it is given one, it is the operator's.
        match env.get("JWT_SECRET") {
            Some(secret) => assert_eq!(secret, GOOD_SECRET, "{name}"),
            None => assert_eq!(name, "migrate", "chat-api sets JWT_SECRET"),
        }
    }
}

#[test]
fn the_service_healthcheck_is_the_images_and_hits_health_live() {
    let compose = compose();
    let healthcheck = &service(&compose, "chat-api")["healthcheck"];
    let test = string_list(&healthcheck["test"], "chat-api healthcheck test");
    assert_eq!(test[0], "CMD", "exec form: {test:?}");
    assert!(
        test.iter().any(|arg| arg.contains("/health/live")),
        "{test:?}"
    );

    // `config` prints a file compose can read again, so a literal `$` comes
    // back escaped as `$$`; the container gets the unescaped command.
    let mirrored: Vec<String> = test[1..].iter().map(|arg| arg.replace("$$", "$")).collect();
    let (options, image_command) = image_healthcheck();
    assert_eq!(mirrored, image_command);
    for key in ["interval", "timeout", "start_period"] {
        let option = key.replace('_', "-");
        assert_eq!(
            seconds(text(&healthcheck[key], key)),
            seconds(options.get(&option).expect("the Dockerfile sets it")),
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
    let env = environment(chat_api);
    let config = Config::from_lookup(|key| env.get(key).cloned())
        .expect("the compose environment is accepted");
    let stop = Duration::from_secs(seconds(text(
        &chat_api["stop_grace_period"],
        "stop_grace_period",
    )));
    assert!(
        stop > config.shutdown_grace,
        "stop_grace_period {stop:?} must exceed SHUTDOWN_GRACE_SECONDS ({:?}), or SIGKILL cuts requests in flight",
        config.shutdown_grace
    );
    assert_eq!(text(&chat_api["stop_signal"], "stop_signal"), "SIGTERM");
}

#[test]
fn the_compose_environment_is_a_valid_production_configuration() {
    let compose = compose();
    let env = environment(service(&compose, "chat-api"));
    let asked = std::cell::RefCell::new(BTreeSet::new());
    let settings = Settings::from_lookup(|key| {
        asked.borrow_mut().insert(key.to_owned());
        env.get(key).cloned()
    })
    .expect("the compose environment is accepted");
    let config = &settings.config;
    assert_eq!(config.app_env, AppEnv::Production);
    assert_eq!(config.logging.format, LogFormat::Json);
    assert_eq!(config.bind_address.port(), 8080);
    assert!(!config.run_migrations);
    assert!(!config.jwt.generated_secret);
    assert!(settings.database.url.starts_with("postgres://"));

    // Every variable compose or the image sets is one the service reads: a
    // misspelt name would be silently ignored and its default used instead.
    let asked = asked.into_inner();
    let set_by = [
        ("chat-api", env.clone()),
        ("migrate", environment(service(&compose, "migrate"))),
        ("the image", image_env()),
    ];
    for (who, variables) in &set_by {
        for key in variables.keys() {
            assert!(
                asked.contains(key),
                "{who} sets {key}, which the service never reads (a typo?); it reads {asked:?}"
            );
        }
    }

    // The image alone (its ENV, no key) refuses to start, as production must.
    let image = image_env();
    let error = Config::from_lookup(|key| image.get(key).cloned()).expect_err("no JWT key");
    assert!(error.to_string().contains("JWT"), "{error}");
    // A secret one byte short of 32 is refused too.
    let mut short = env;
    short.insert("JWT_SECRET".to_owned(), "x".repeat(31));
    assert!(Config::from_lookup(|key| short.get(key).cloned()).is_err());
}

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

/// `cargo metadata` of the workspace: its members, their targets and rust-version.
fn metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Each workspace member's directory and its lib/bin source files, relative to the root.
fn workspace_members() -> Vec<(String, Vec<String>)> {
    let root = workspace_root();
    let relative = |path: &str| {
        Path::new(path)
            .strip_prefix(&root)
            .unwrap_or_else(|_| panic!("{path} is inside the workspace"))
            .to_string_lossy()
            .into_owned()
    };
    let metadata = metadata();
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let manifest = package["manifest_path"].as_str().expect("manifest_path");
            let dir = relative(manifest)
                .trim_end_matches("Cargo.toml")
                .trim_end_matches('/')
                .to_owned();
            let sources = package["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .filter(|target| {
                    target["kind"].as_array().is_some_and(|kinds| {
                        kinds.iter().any(|kind| kind == "lib" || kind == "bin")
                    })
                })
                .map(|target| relative(target["src_path"].as_str().expect("src_path")))
                .collect();
            (dir, sources)
        })
        .collect()
}

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
    let metadata = metadata();
    let versions: BTreeSet<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| package["rust_version"].as_str().expect("a rust-version"))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "one rust-version for the workspace: {versions:?}"
    );
    let required: &str = versions.first().expect("one");
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
    // No key and no database credentials are baked into the image's layers.
    for key in env.keys() {
        assert!(
            !key.starts_with("JWT_") && key != "DATABASE_URL",
            "the image sets {key}: secrets come from the operator at run time"
        );
    }
    assert!(
        !runtime.iter().any(|i| i.keyword == "ARG"),
        "build arguments end up in the image's history; the runtime stage takes none"
    );
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
        seconds(&options["timeout"]) < seconds(&options["interval"]),
        "{options:?}"
    );
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

    // Cargo refuses a workspace with a member's manifest or target missing, so
    // every member needs both before the dependency build.
    let stub_step = &all[builds[0]].args;
    for (member, targets) in workspace_members() {
        assert!(
            all[..builds[0]].iter().any(
                |i| i.keyword == "COPY" && i.args.starts_with(&format!("{member}/Cargo.toml "))
            ),
            "{member}/Cargo.toml is copied before the dependency build"
        );
        for source in targets {
            assert!(
                stub_step.contains(&source),
                "the stub step creates {source}"
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
    for (member, _) in workspace_members() {
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
    let mut env = environment(migrate);
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
