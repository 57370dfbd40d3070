//! The command line: `kmeans-trainer --chat <id> --user <uuid> --k <k> <file>`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use chat_domain::{ChatId, UserId};
use chat_infra::redact_url;
use clap::Parser;

use crate::training::DEFAULT_SEED;

const AFTER_HELP: &str = "\
CSV format: comma-separated numbers, one data point per row, every row as wide
as the first. White space around cells and blank lines are ignored. The first
row is a header (and skipped) when none of its cells is a number, e.g. `x,y`.
NaN and infinities are refused.

The centroids are stored, sorted, as a new k-means result of the chat, which
must belong to --user. The database must already be migrated (chat-api does it
when it starts).

Exit codes: 0 stored; 1 unexpected failure; 2 usage or bad input (arguments,
CSV, k, a chat not found); 3 database unavailable.";

/// What to train and where to store it.
#[derive(Clone, Parser)]
#[command(
    name = "kmeans-trainer",
    version,
    about = "Runs k-means on a CSV file and stores the centroids as a result of one chat.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// The chat the result belongs to (a UUID).
    #[arg(long = "chat", value_name = "CHAT_ID")]
    pub chat: ChatId,

    /// The user who owns the chat (a UUID).
    #[arg(long = "user", value_name = "USER_ID")]
    pub user: UserId,

    /// The number of clusters: at least 1, at most the number of distinct rows.
    #[arg(long, value_name = "K", value_parser = parse_k)]
    pub k: usize,

    /// Seeds the random initialisation: the same file, k and seed give the same centroids.
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// The chats' database, postgres://… (or sqlite://…).
    #[arg(
        long,
        value_name = "URL",
        env = "DATABASE_URL",
        // The URL may hold a password: never print it in --help.
        hide_env_values = true
    )]
    pub database_url: String,

    /// The CSV file of numeric rows.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("chat", &self.chat)
            .field("user", &self.user)
            .field("k", &self.k)
            .field("seed", &self.seed)
            .field("database_url", &redact_url(&self.database_url))
            .field("file", &self.file)
            .finish()
    }
}

/// Parses the command line, program name first (as `std::env::args_os()`
/// gives it). `DATABASE_URL` is read from the environment when
/// `--database-url` is not given.
pub fn parse_args<I, T>(args: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Args::try_parse_from(args)
}

/// A usage error as one line (clap's first paragraph, without the usage and
/// the `--help` hint that follow it).
pub fn usage_error_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first_paragraph = rendered.split("\n\n").next().unwrap_or_default();
    let line = first_paragraph
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("{line} (see --help)")
}

fn parse_k(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(k) => Ok(k),
        Err(_) => Err("must be a whole number, at least 1".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "0b9f7f0e-5c4a-4d7e-9a51-0f6a3e0c2b11";
    const USER: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut args = vec!["kmeans-trainer", "--database-url", "postgres://u:pw@h/db"];
        args.extend_from_slice(extra);
        parse_args(args)
    }

    #[test]
    fn reads_every_argument_with_the_default_seed() {
        let args = parse(&["--chat", CHAT, "--user", USER, "--k", "3", "data.csv"]).expect("valid");
        assert_eq!(args.chat.to_string(), CHAT);
        assert_eq!(args.user.to_string(), USER);
        assert_eq!((args.k, args.seed), (3, DEFAULT_SEED));
        assert_eq!(args.file, PathBuf::from("data.csv"));
        assert!(
            !format!("{args:?}").contains("pw"),
            "Debug hides the password"
        );
    }

    #[test]
    fn refusals_are_one_line_naming_the_argument() {
        let bad_user = parse(&["--chat", CHAT, "--user", "nope", "--k", "3", "data.csv"])
            .expect_err("refused");
        let line = usage_error_line(&bad_user);
        assert!(!line.contains('\n'));
        assert!(line.contains("'nope'") && line.contains("--user"), "{line}");
        let zero =
            parse(&["--chat", CHAT, "--user", USER, "--k", "0", "data.csv"]).expect_err("refused");
        assert!(usage_error_line(&zero).contains("must be at least 1"));
        let missing = parse(&["--chat", CHAT, "--k", "1", "data.csv"]).expect_err("refused");
        let line = usage_error_line(&missing);
        assert!(!line.contains('\n') && line.contains("--user"), "{line}");
    }
}
