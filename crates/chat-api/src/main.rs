//! The `chat-api` binary: the command line and the wiring; nothing else.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat_api::app::{self, Settings};
use chat_api::auth::mint_token;
use chat_api::config::{Config, ConfigError, LogSettings};
use chat_api::traces::TraceSettings;
use chat_api::{Application, telemetry};
use chat_domain::UserId;
use clap::{Parser, Subcommand};

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
    /// Apply pending migrations and exit (needs only the DATABASE_* settings).
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
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Settings::from_env().map_err(refusal).and_then(|settings| {
            let logging = settings.config.logging.clone();
            let traces = settings.config.traces.clone();
            run(&logging, traces.as_ref(), serve(settings))
        }),
        // Migrating needs the database, not the JWT keys.
        Command::Migrate => match (LogSettings::from_env(), app::database_from_env()) {
            (Ok(logging), Ok(database)) => run(&logging, None, migrate(database)),
            (Err(error), _) | (_, Err(error)) => Err(refusal(error)),
        },
        Command::Token { sub, ttl } => Config::from_env()
            .map_err(refusal)
            .and_then(|config| token(&config, &sub, ttl)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A configuration error, worded as the reason the process will not start.
fn refusal(error: ConfigError) -> anyhow::Error {
    anyhow::anyhow!("refusing to start: {error}")
}

/// Runs `task` with logging (and span export when configured), on an actix
/// system (the server's runtime); flushes both at the end.
fn run(
    logging: &LogSettings,
    traces: Option<&TraceSettings>,
    task: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // The exporter's HTTP client (rustls) needs the process's crypto provider.
    chat_api::auth::install_tls_provider();
    actix_web::rt::System::new().block_on(async {
        // Inside the runtime: the gRPC exporter binds to it.
        let provider = traces
            .map(TraceSettings::provider)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let telemetry = telemetry::init(logging, provider);
        let outcome = task.await;
        telemetry.shutdown().await;
        outcome
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let config = &settings.config;
    // With no key configured, a demo user's token signed with the random secret.
    let demo = config.jwt.generated_secret.then(|| {
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        mint_token(&config.jwt, &user.to_string(), Duration::from_secs(3600))
    });
    let app = Application::build(settings, true).await?;
    // The banner goes first: a terminal reading both streams then shows it whole,
    // and the "listening" line after it.
    if let Some(token) = demo {
        print_demo_token(&token.map_err(anyhow::Error::msg)?, app.address())
            .context("writing the demo token to stderr")?;
    }
    tracing::info!(address = %app.address(), "listening");
    if let Some(admin) = app.admin_address() {
        tracing::info!(address = %admin, "admin listener (metrics, health) listening");
    }
    app.run_until_stopped().await.context("server failed")
}

async fn migrate(settings: chat_infra::DatabaseConfig) -> anyhow::Result<()> {
    let database = chat_infra::Database::connect(&settings).await?;
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
    let token = mint_token(&config.jwt, &user.to_string(), Duration::from_secs(ttl))
        .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

/// Development convenience: a token for a demo user and a command to try it,
/// on stderr (never in the log stream on stdout). One `write_all` of the whole
/// text: `eprintln!` writes each formatted piece separately, and the log thread's
/// lines on stdout landed between them when both streams share a terminal or file.
fn print_demo_token(token: &str, address: std::net::SocketAddr) -> std::io::Result<()> {
    use std::io::Write as _;
    let banner = format!(
        "\nNo JWT key configured: this process signs tokens with a random secret (development only).\n\
         Demo token for a new user, valid for 1 h:\n\n{token}\n\nTry it:\n\n\
         curl -H 'Authorization: Bearer {token}' http://{address}/chat/\n\n"
    );
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(banner.as_bytes())?;
    stderr.flush()
}
