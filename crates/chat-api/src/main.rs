//! The `chat-api` binary: the command line and the wiring; nothing else.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat_api::auth::mint_token;
use chat_api::config::Config;
use chat_api::{Application, telemetry};
use chat_domain::UserId;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

/// Chats and their k-means results, per user, over HTTP.
#[derive(Debug, Parser)]
#[command(name = "chat-api", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the default). Applies pending migrations first unless RUN_MIGRATIONS=false.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print a token signed with the configured HS* secret (JWT_SECRET).
    Token {
        /// The user id (`sub`), a UUID.
        #[arg(long)]
        sub: String,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing .env is normal; a broken one is worth saying.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("chat-api: ignoring .env: {error}");
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chat-api: refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Token { sub, ttl } => token(&config, &sub, ttl),
        Command::Migrate => run(config, migrate),
        Command::Serve => run(config, serve),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `task` with logging on an actix system (the server's runtime).
fn run<F, Fut>(config: Config, task: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let _flush_logs = telemetry::init(config.log_format);
    actix_web::rt::System::new().block_on(task(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let demo = config.jwt.generated_secret;
    let secret = config
        .jwt
        .secret
        .as_ref()
        .map(|s| s.expose_secret().to_vec());
    let app = Application::build(config, true).await?;
    tracing::info!(address = %app.address(), "listening");
    if demo && let Some(secret) = secret {
        print_demo_token(&secret, app.address())?;
    }
    app.run_until_stopped().await.context("server failed")
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let database = chat_infra::Database::connect(&chat_api::app::database_config(&config)).await?;
    database.migrate().await.context("migrations failed")?;
    tracing::info!("migrations applied");
    database.close().await;
    Ok(())
}

fn token(config: &Config, sub: &str, ttl: u64) -> anyhow::Result<()> {
    let user = UserId::parse(sub).context("--sub must be a UUID")?;
    anyhow::ensure!(
        !config.jwt.generated_secret,
        "no JWT_SECRET configured: a token signed now would match no running server"
    );
    let secret = config
        .jwt
        .secret
        .as_ref()
        .context("JWT_SECRET is not set")?;
    let alg = config
        .jwt
        .hmac_algorithm()
        .context("JWT_ALGORITHMS lists no HS* algorithm")?;
    let token = mint_token(
        secret.expose_secret(),
        alg,
        &user.to_string(),
        Duration::from_secs(ttl),
    )
    .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

/// Development convenience: with no key configured, a token for a demo user
/// and a command to try it, on stderr (never in the log stream).
fn print_demo_token(secret: &[u8], address: std::net::SocketAddr) -> anyhow::Result<()> {
    let user = UserId::from_uuid(uuid::Uuid::new_v4());
    let token = mint_token(
        secret,
        jsonwebtoken::Algorithm::HS256,
        &user.to_string(),
        Duration::from_secs(3600),
    )
    .map_err(anyhow::Error::msg)?;
    eprintln!(
        "\nNo JWT key configured: this process signs tokens with a random secret (development only).\n\
         Demo user {user}, token valid for 1 h:\n\n{token}\n\nTry it:\n\n\
         curl -H 'Authorization: Bearer {token}' http://{address}/chat/\n"
    );
    Ok(())
}
