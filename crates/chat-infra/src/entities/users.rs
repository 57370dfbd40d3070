//! `users`: one row per user id seen on a write (the token issuer is trusted
//! for identity, so there is no sign-up).

use sea_orm::entity::prelude::*;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The token's `sub`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// When the user was first seen. (Their number of chats is in
    /// `user_chat_counts`.)
    pub created_at: DateTimeUtc,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// A user owns chats.
    #[sea_orm(has_many = "super::chats::Entity")]
    Chats,
}

impl Related<super::chats::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chats.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
