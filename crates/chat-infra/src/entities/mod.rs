//! SeaORM entities for the contract's tables. They mirror the migrations and
//! are public so other Rust services can read and write the same tables.

pub mod chats;
pub mod idempotency_keys;
pub mod kmeans_data;
pub mod user_chat_counts;
pub mod users;
