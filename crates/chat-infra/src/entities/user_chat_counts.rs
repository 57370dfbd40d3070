//! `user_chat_counts`: each user's number of chats, spread over counter slots.
//!
//! Triggers on `chats` keep it: every insert adds 1 and every delete subtracts
//! 1 on one slot (PostgreSQL: the writing connection's `pg_backend_pid() % 64`;
//! SQLite: slot 0), so writers for the same user rarely touch the same row. A
//! user's number of chats is the sum of their slots; no slot row means 0. Other
//! services need not write it: the triggers count their writes too.

use sea_orm::entity::prelude::*;

/// A row of `user_chat_counts`: one slot of one user's counter.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_chat_counts")]
pub struct Model {
    /// The owner (`chats.user_id`); deliberately no foreign key, so the
    /// triggers never lock the `users` row.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// 0..64 on PostgreSQL, 0 on SQLite.
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: i16,
    /// This slot's share of the count; may be negative (a delete counted on
    /// another slot than its insert), only the sum is meaningful.
    pub n: i64,
}

/// `user_chat_counts` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
