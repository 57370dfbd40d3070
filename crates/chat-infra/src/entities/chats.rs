//! `chats`: the chats, scoped to their owner.

use sea_orm::entity::prelude::*;

/// A row of `chats`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    /// Time-ordered (v7) id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner (`users.id`).
    pub user_id: Uuid,
    /// Trimmed, 1..=255 characters.
    pub title: String,
    /// At most 10,000 characters.
    pub description: Option<String>,
    /// Creation time (microsecond precision).
    pub created_at: DateTimeUtc,
    /// Last change (microsecond precision).
    pub updated_at: DateTimeUtc,
    /// Revision counter behind ETags and `If-Match`.
    pub version: i64,
}

/// Relations of `chats`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owner.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    /// The chat's k-means results.
    #[sea_orm(has_many = "super::kmeans_data::Entity")]
    KmeansData,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::kmeans_data::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::KmeansData.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
