//! SeaORM adapters for the chat-domain ports, on PostgreSQL and SQLite.
//!
//! - [`Database`]: the pool, built from a [`DatabaseConfig`]; migrations,
//!   readiness pings, pool status and statement counts;
//! - [`SeaOrmRepository`]: implements [`chat_domain::ChatRepository`] and
//!   [`chat_domain::KmeansDataRepository`] with one code path for both backends;
//! - the operations ports ([`chat_domain::Readiness`], [`chat_domain::SchemaMigrations`],
//!   [`chat_domain::ConnectionPool`]) for [`Database`];
//! - [`entities`]: the tables, for other Rust services that share them.
//!
//! Database errors become [`chat_domain::RepositoryError`] in exactly one
//! function; "the database is unreachable or too slow" is `Unavailable`.

mod database;
pub mod entities;
mod error;
mod inline;
mod mapping;
mod operations;
mod repository;
mod session;

pub use chat_domain::PoolStatus;
pub use database::{ConnectError, Database, DatabaseConfig, Pooler, QueryStats, redact_url};
pub use repository::SeaOrmRepository;
