//! `kmeans-trainer`: trains k-means on a CSV file and stores the centroids as
//! a result of one chat, through chat-domain's use cases and chat-infra's
//! adapter; a second service on the domain crate, with no HTTP in it.
//!
//! The binary is a thin shell over [`run`]: tests (chat-api's among them)
//! drive exactly what it does by calling [`parse_args`] and [`run`].
//!
//! - [`reading`]: the CSV file, its header rule and its errors;
//! - [`training`]: k-means with a seeded random number generator;
//! - [`storing`]: the chat check and the write.

pub mod cli;
pub mod reading;
pub mod storing;
pub mod training;

use std::fmt;

use chat_domain::KmeansData;

pub use cli::{Args, parse_args, usage_error_line};
pub use reading::{Dataset, ReadError};
pub use storing::{Store, StoreError};
pub use training::{DEFAULT_SEED, TrainingError};

/// The process exit codes (also in `--help` and `docs/trainer.md`).
pub mod exit {
    /// The result was stored.
    pub const STORED: u8 = 0;
    /// Something unexpected failed (the database refused the write, say).
    pub const FAILED: u8 = 1;
    /// Usage or bad input: arguments, the CSV file, `k`, a chat not found.
    pub const BAD_INPUT: u8 = 2;
    /// The database could not be reached; retrying later may succeed.
    pub const UNAVAILABLE: u8 = 3;
}

/// Why nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// The CSV file is not usable.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `k` does not fit the data, or training failed.
    #[error(transparent)]
    Training(#[from] TrainingError),
    /// The database refused, or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TrainerError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Read(_)
            | Self::Training(TrainingError::NoClusters)
            | Self::Training(TrainingError::MoreClustersThanRows { .. })
            | Self::Training(TrainingError::MoreClustersThanDistinctRows { .. })
            | Self::Store(StoreError::InvalidUrl(_))
            | Self::Store(StoreError::ChatNotFound { .. }) => exit::BAD_INPUT,
            Self::Store(StoreError::Unavailable { .. }) => exit::UNAVAILABLE,
            Self::Training(TrainingError::Failed(_)) | Self::Store(StoreError::Failed { .. }) => {
                exit::FAILED
            }
        }
    }
}

/// What was stored.
#[derive(Debug, Clone)]
pub struct Report {
    /// The stored result: its id, chat, centroids and time.
    pub stored: KmeansData,
    /// How many data rows it was trained on.
    pub rows: usize,
    /// Whether the file's first row was a header (and skipped).
    pub header_skipped: bool,
    /// The seed used.
    pub seed: u64,
}

impl fmt::Display for Report {
    /// A summary line, then one line per centroid.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let centroids = &self.stored.centroids;
        write!(
            f,
            "stored k-means result {} of chat {}: k={}, {} dimension(s), {} row(s){}, seed {}",
            self.stored.id,
            self.stored.chat_id,
            centroids.k(),
            centroids.dimensions(),
            self.rows,
            if self.header_skipped {
                " (header skipped)"
            } else {
                ""
            },
            self.seed,
        )?;
        for row in centroids.rows() {
            let values: Vec<String> = row.iter().map(f64::to_string).collect();
            write!(f, "\n{}", values.join(","))?;
        }
        Ok(())
    }
}

/// Everything the binary does: reads and checks the file, checks the chat,
/// trains, stores. Input is checked before the database is touched, and the
/// chat before training, so that any refusal stores nothing.
pub async fn run(args: Args) -> Result<Report, TrainerError> {
    let data = reading::read_file(&args.file)?;
    training::check_k(&data, args.k)?;
    let store = Store::connect(&args.database_url, args.user).await?;
    let stored = train_and_store(&store, &args, &data).await;
    store.close().await;
    Ok(Report {
        stored: stored?,
        rows: data.rows.len(),
        header_skipped: data.header.is_some(),
        seed: args.seed,
    })
}

async fn train_and_store(
    store: &Store,
    args: &Args,
    data: &Dataset,
) -> Result<KmeansData, TrainerError> {
    store.check_chat(args.chat).await?;
    let centroids = training::train(data, args.k, args.seed)?;
    Ok(store.save(args.chat, centroids).await?)
}
