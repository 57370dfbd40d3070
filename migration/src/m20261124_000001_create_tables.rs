//! `users`, `chats` and `kmeans_data`, with the indexes the queries need.

use sea_orm_migration::prelude::*;

use crate::{Chats, KmeansData, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Chats::Table)
                    .col(ColumnDef::new(Chats::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Chats::UserId).uuid().not_null())
                    // Defence in depth for other writers; the domain checks the same rules.
                    .col(
                        ColumnDef::new(Chats::Title)
                            .text()
                            .not_null()
                            .check(Expr::cust("length(title) BETWEEN 1 AND 255")),
                    )
                    .col(
                        ColumnDef::new(Chats::Description)
                            .text()
                            .null()
                            .check(Expr::cust("length(description) <= 10000")),
                    )
                    .col(
                        ColumnDef::new(Chats::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Chats::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Chats::Version)
                            .big_integer()
                            .not_null()
                            .default(1)
                            .check(Expr::col(Chats::Version).gte(1)),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chats_user_id")
                            .from(Chats::Table, Chats::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Serves the list query in both modes: WHERE user_id = ? ORDER BY
        // created_at DESC, id DESC, with OFFSET or a (created_at, id) < (?, ?) keyset.
        manager
            .create_index(
                Index::create()
                    .name("ix_chats_user_id_created_at_id")
                    .table(Chats::Table)
                    .col(Chats::UserId)
                    .col((Chats::CreatedAt, IndexOrder::Desc))
                    .col((Chats::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KmeansData::Table)
                    .col(
                        ColumnDef::new(KmeansData::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(KmeansData::ChatId).uuid().not_null())
                    .col(
                        ColumnDef::new(KmeansData::K)
                            .integer()
                            .not_null()
                            .check(Expr::col(KmeansData::K).gte(1)),
                    )
                    .col(
                        ColumnDef::new(KmeansData::Centroids)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(KmeansData::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_kmeans_data_chat_id")
                            .from(KmeansData::Table, KmeansData::ChatId)
                            .to(Chats::Table, Chats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // A chat's results, oldest first; also makes the cascading delete cheap.
        manager
            .create_index(
                Index::create()
                    .name("ix_kmeans_data_chat_id_created_at")
                    .table(KmeansData::Table)
                    .col(KmeansData::ChatId)
                    .col(KmeansData::CreatedAt)
                    .col(KmeansData::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            KmeansData::Table.into_iden(),
            Chats::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
