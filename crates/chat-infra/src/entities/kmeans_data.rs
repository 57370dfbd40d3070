//! `kmeans_data`: the cluster centres of trained models, owned by a chat.

use sea_orm::entity::prelude::*;

/// A row of `kmeans_data`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "kmeans_data")]
pub struct Model {
    /// Time-ordered (v7) id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning chat; deleting it deletes this row (`ON DELETE CASCADE`).
    pub chat_id: Uuid,
    /// Number of clusters, `>= 1`; equals the number of rows of `centroids`.
    pub k: i32,
    /// `[[f64; dimensions]; k]` as JSON (`jsonb` on PostgreSQL).
    pub centroids: Json,
    /// When it was stored.
    pub created_at: DateTimeUtc,
}

/// Relations of `kmeans_data`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning chat.
    #[sea_orm(
        belongs_to = "super::chats::Entity",
        from = "Column::ChatId",
        to = "super::chats::Column::Id",
        on_delete = "Cascade"
    )]
    Chat,
}

impl Related<super::chats::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chat.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
