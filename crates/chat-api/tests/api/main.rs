//! Black-box tests of the HTTP contract (docs/api.md): the real server on port
//! 0, a real HTTP client over TCP, and really signed tokens. One module per
//! part of the contract. Tests in `on_every_adapter!` run three times: over the
//! in-memory adapter (`…::on_memory`, the fast tier, no database), over a
//! fresh PostgreSQL database (`…::on_postgres`), and over one reached through
//! PgBouncer in transaction pooling mode (`…::on_pgbouncer`); the rest are
//! about the database or the binary and run on PostgreSQL or SQLite only.

#[macro_use]
mod helpers;

mod admin;
mod auth;
mod binary;
mod budgets;
mod chats;
mod compression;
mod conditional;
mod contention;
mod dashboards;
mod failover;
mod faults;
mod idempotency;
mod jwks;
mod kmeans;
mod openapi_document;
mod operations;
mod pagination;
mod pool;
mod pooler;
mod replicas;
mod traces;
mod trainer;
mod unavailable;
mod validation;
