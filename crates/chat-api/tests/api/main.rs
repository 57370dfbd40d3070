//! Black-box tests of the HTTP contract (`../shared/API.md`): the real server
//! on port 0 over a fresh PostgreSQL database, a real HTTP client over TCP, and
//! really signed tokens. One module per part of the contract.

mod auth;
mod binary;
mod budgets;
mod chats;
mod conditional;
mod contention;
mod helpers;
mod kmeans;
mod operations;
mod pagination;
mod unavailable;
mod validation;
