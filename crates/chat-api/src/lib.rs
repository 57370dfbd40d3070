//! The chat-api HTTP service (actix-web) over the chat-domain use cases.
//!
//! - [`config`]: settings from the environment, validated once;
//! - [`auth`]: bearer-token verification and the authenticated-user extractor;
//! - [`params`], [`body`], [`dto`]: what a request carries, each invalid field
//!   collected by [`fields`] so one 422 lists them all;
//! - [`routes`]: thin handlers, one per operation;
//! - [`idempotency`]: the `Idempotency-Key` header, body fingerprints, replays;
//! - [`error`]: the one mapping to `application/problem+json`;
//! - [`storage`]: the domain's ports the service runs over (no adapter named);
//! - [`app`]: [`Application::build`], which binds and wires everything;
//! - [`middleware`]: the pipeline around every route (request id, limits,
//!   problem documents, logs and metrics);
//! - [`openapi`], [`metrics`], [`telemetry`]: documentation and observability.

pub mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod cursor;
pub mod dto;
pub mod error;
pub mod etag;
pub mod fields;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod traces;

pub use app::{Application, StartupError};
pub use config::Config;
