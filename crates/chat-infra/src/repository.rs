//! The SeaORM implementation of the domain's ports, one code path for
//! PostgreSQL and SQLite. Every chat query carries the owner.

use async_trait::async_trait;
use chat_domain::{
    Chat, ChatChanges, ChatId, ChatRepository, DescriptionPatch, ExpectedVersion, KmeansData,
    KmeansDataRepository, Page, PageRequest, PageStart, RepositoryError, Timestamp, UserId,
};
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, OnConflict, Query, SelectStatement, WithClause,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};

use crate::database::Database;
use crate::entities::{chats, kmeans_data, user_chat_counts, users};
use crate::error::repository_error;
use crate::mapping::{centroids_column, chat_from_row, chat_to_row, k_column, kmeans_from_row};
use crate::session::Session;

/// Chats and k-means results in PostgreSQL or SQLite.
#[derive(Clone, Debug)]
pub struct SeaOrmRepository {
    db: Database,
}

impl SeaOrmRepository {
    /// The repository over this pool.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The pool behind it.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The owner's number of chats (0 before their first write): the sum of
    /// their counter slots, at most 64 rows whatever the number of chats.
    /// The `CAST` keeps it `bigint` on PostgreSQL, whose `sum(bigint)` is
    /// `numeric`; SQLite reads the same statement.
    fn total_query(owner: UserId) -> SelectStatement {
        Query::select()
            .expr(Expr::cust(
                r#"CAST(COALESCE(SUM("user_chat_counts"."n"), 0) AS BIGINT)"#,
            ))
            .from(user_chat_counts::Entity)
            .and_where(user_chat_counts::Column::UserId.eq(*owner.as_uuid()))
            .to_owned()
    }

    /// The owner's number of chats, in a statement of its own.
    async fn total(session: &Session, owner: UserId) -> Result<i64, RepositoryError> {
        let statement = session
            .get_database_backend()
            .build(&Self::total_query(owner));
        let row = session
            .query_one_raw(statement)
            .await
            .map_err(repository_error)?;
        match row {
            Some(row) => row.try_get_by_index::<i64>(0).map_err(repository_error),
            None => Ok(0),
        }
    }

    /// After a conditional write touched no row: was the chat missing (or
    /// another user's), or was its version stale? Only asked on that path, so
    /// the successful write stays one statement.
    async fn missing_or_stale(
        session: &Session,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> RepositoryError {
        if *expected == ExpectedVersion::Any {
            return RepositoryError::NotFound;
        }
        let exists = chats::Entity::find_by_id(*id.as_uuid())
            .filter(chats::Column::UserId.eq(*owner.as_uuid()))
            .select_only()
            .column(chats::Column::Id)
            .into_tuple::<uuid::Uuid>()
            .one(session)
            .await;
        match exists {
            Ok(Some(_)) => RepositoryError::VersionMismatch,
            Ok(None) => RepositoryError::NotFound,
            Err(error) => repository_error(error),
        }
    }
}

/// A row of the list query: a chat and its owner's total.
#[derive(Debug, FromQueryResult)]
struct ListedChat {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    title: String,
    description: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: i64,
    /// The sum of the owner's counter slots (never `NULL` in practice: the
    /// aggregate always yields a row).
    total: Option<i64>,
}

impl ListedChat {
    fn into_row(self) -> chats::Model {
        chats::Model {
            id: self.id,
            user_id: self.user_id,
            title: self.title,
            description: self.description,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// `version IN (…)` when the writer stated a precondition.
fn version_condition(expected: &ExpectedVersion) -> Option<sea_orm::sea_query::SimpleExpr> {
    match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::OneOf(versions) => {
            Some(chats::Column::Version.is_in(versions.iter().map(|version| version.get())))
        }
    }
}

#[async_trait]
impl ChatRepository for SeaOrmRepository {
    async fn insert(&self, chat: &Chat) -> Result<(), RepositoryError> {
        // First write of this user: provision the row. ON CONFLICT DO NOTHING
        // makes concurrent first writes race-free.
        let provision = Query::insert()
            .into_table(users::Entity)
            .columns([users::Column::Id, users::Column::CreatedAt])
            .values_panic([
                (*chat.user_id.as_uuid()).into(),
                chat.created_at.as_datetime().into(),
            ])
            .on_conflict(
                OnConflict::column(users::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        let insert = chats::Entity::insert(chat_to_row(chat)).into_query();
        self.db
            .bounded(async {
                let session = self.db.session().await?;
                if session.supports_writable_cte() {
                    // PostgreSQL: both in one statement, which is its own
                    // transaction: one round trip instead of four.
                    let cte = CommonTableExpression::new()
                        .query(provision)
                        .table_name(Alias::new("provisioned"))
                        .to_owned();
                    let statement = insert.with(WithClause::new().cte(cte).to_owned());
                    session
                        .execute(&statement)
                        .await
                        .map_err(repository_error)?;
                    return Ok(());
                }
                let transaction = session.begin().await?;
                transaction
                    .execute(&provision)
                    .await
                    .map_err(repository_error)?;
                transaction
                    .execute(&insert)
                    .await
                    .map_err(repository_error)?;
                transaction.commit().await
            })
            .await
    }

    async fn find(&self, owner: UserId, id: ChatId) -> Result<Option<Chat>, RepositoryError> {
        self.db
            .bounded(async {
                let session = self.db.session().await?;
                chats::Entity::find_by_id(*id.as_uuid())
                    .filter(chats::Column::UserId.eq(*owner.as_uuid()))
                    .one(&session)
                    .await
                    .map_err(repository_error)?
                    .map(chat_from_row)
                    .transpose()
            })
            .await
    }

    async fn list(&self, owner: UserId, page: PageRequest) -> Result<Page<Chat>, RepositoryError> {
        self.db
            .bounded(async {
                let session = self.db.session().await?;
                let limit = u64::from(page.limit.get());
                // One row more than the page tells whether another page follows.
                let mut query = chats::Entity::find()
                    .filter(chats::Column::UserId.eq(*owner.as_uuid()))
                    .order_by_desc(chats::Column::CreatedAt)
                    .order_by_desc(chats::Column::Id)
                    .limit(limit + 1);
                query = match page.start {
                    PageStart::Offset(skip) if skip.get() == 0 => query,
                    PageStart::Offset(skip) => query.offset(skip.get()),
                    PageStart::After(cursor) => query.filter(
                        Expr::tuple([
                            Expr::col((chats::Entity, chats::Column::CreatedAt)),
                            Expr::col((chats::Entity, chats::Column::Id)),
                        ])
                        .lt(Expr::tuple([
                            Expr::val(cursor.created_at.as_datetime()),
                            Expr::val(*cursor.id.as_uuid()),
                        ])),
                    ),
                };
                // The owner's total rides along as a scalar subquery: one round
                // trip, and page and total come from the same snapshot.
                let total = Self::total_query(owner);
                let listed = query
                    .expr_as(Expr::SubQuery(None, Box::new(total.into())), "total")
                    .into_model::<ListedChat>()
                    .all(&session)
                    .await
                    .map_err(repository_error)?;
                let has_more = listed.len() as u64 > limit;
                let total = match listed.first() {
                    Some(first) => first.total.unwrap_or(0),
                    // An empty page carries no total: ask for it (past the end, or no chats).
                    None => Self::total(&session, owner).await?,
                };
                let rows = listed
                    .into_iter()
                    .take(page.limit.get().into())
                    .map(ListedChat::into_row);
                Ok(Page {
                    items: rows.map(chat_from_row).collect::<Result<_, _>>()?,
                    total: u64::try_from(total).unwrap_or(0),
                    has_more,
                })
            })
            .await
    }

    async fn update(
        &self,
        owner: UserId,
        id: ChatId,
        changes: &ChatChanges,
        expected: &ExpectedVersion,
        now: Timestamp,
    ) -> Result<Chat, RepositoryError> {
        self.db
            .bounded(async {
                let mut update = chats::Entity::update_many()
                    .col_expr(
                        chats::Column::Version,
                        Expr::col(chats::Column::Version).add(1),
                    )
                    .col_expr(chats::Column::UpdatedAt, Expr::val(now.as_datetime()))
                    .filter(chats::Column::Id.eq(*id.as_uuid()))
                    .filter(chats::Column::UserId.eq(*owner.as_uuid()));
                if let Some(title) = &changes.title {
                    update = update.col_expr(chats::Column::Title, Expr::val(title.as_str()));
                }
                match &changes.description {
                    DescriptionPatch::Unchanged => {}
                    DescriptionPatch::Set(description) => {
                        update = update
                            .col_expr(chats::Column::Description, Expr::val(description.as_str()));
                    }
                    DescriptionPatch::Clear => {
                        update = update.col_expr(
                            chats::Column::Description,
                            Expr::val(Option::<String>::None),
                        );
                    }
                }
                if let Some(condition) = version_condition(expected) {
                    update = update.filter(condition);
                }
                let session = self.db.session().await?;
                let row = update
                    .exec_with_returning(&session)
                    .await
                    .map_err(repository_error)?
                    .into_iter()
                    .next();
                match row {
                    Some(row) => chat_from_row(row),
                    None => Err(Self::missing_or_stale(&session, owner, id, expected).await),
                }
            })
            .await
    }

    async fn delete(
        &self,
        owner: UserId,
        id: ChatId,
        expected: &ExpectedVersion,
    ) -> Result<(), RepositoryError> {
        self.db
            .bounded(async {
                let mut delete = chats::Entity::delete_many()
                    .filter(chats::Column::Id.eq(*id.as_uuid()))
                    .filter(chats::Column::UserId.eq(*owner.as_uuid()));
                if let Some(condition) = version_condition(expected) {
                    delete = delete.filter(condition);
                }
                let session = self.db.session().await?;
                let deleted = delete
                    .exec(&session)
                    .await
                    .map_err(repository_error)?
                    .rows_affected;
                if deleted == 0 {
                    return Err(Self::missing_or_stale(&session, owner, id, expected).await);
                }
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl KmeansDataRepository for SeaOrmRepository {
    async fn add_kmeans_data(
        &self,
        owner: UserId,
        data: &KmeansData,
    ) -> Result<(), RepositoryError> {
        let k = k_column(data)?;
        self.db
            .bounded(async {
                // INSERT … SELECT from the owner's chat: ownership is checked by
                // the same statement that writes, so no row means "no such chat".
                let source = Query::select()
                    .expr(Expr::val(*data.id.as_uuid()))
                    .column((chats::Entity, chats::Column::Id))
                    .expr(Expr::val(k))
                    .expr(Expr::val(centroids_column(data)))
                    .expr(Expr::val(data.created_at.as_datetime()))
                    .from(chats::Entity)
                    .and_where(chats::Column::Id.eq(*data.chat_id.as_uuid()))
                    .and_where(chats::Column::UserId.eq(*owner.as_uuid()))
                    .to_owned();
                let insert = Query::insert()
                    .into_table(kmeans_data::Entity)
                    .columns([
                        kmeans_data::Column::Id,
                        kmeans_data::Column::ChatId,
                        kmeans_data::Column::K,
                        kmeans_data::Column::Centroids,
                        kmeans_data::Column::CreatedAt,
                    ])
                    .select_from(source)
                    .map_err(|error| RepositoryError::Other(Box::new(error)))?
                    .to_owned();
                let session = self.db.session().await?;
                let inserted = session
                    .execute(&insert)
                    .await
                    .map_err(repository_error)?
                    .rows_affected();
                if inserted == 0 {
                    Err(RepositoryError::NotFound)
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn list_kmeans_data(
        &self,
        owner: UserId,
        chat: ChatId,
    ) -> Result<Vec<KmeansData>, RepositoryError> {
        self.db
            .bounded(async {
                let owned_chat = Query::select()
                    .column(chats::Column::Id)
                    .from(chats::Entity)
                    .and_where(chats::Column::Id.eq(*chat.as_uuid()))
                    .and_where(chats::Column::UserId.eq(*owner.as_uuid()))
                    .to_owned();
                kmeans_data::Entity::find()
                    .filter(kmeans_data::Column::ChatId.in_subquery(owned_chat))
                    .order_by_asc(kmeans_data::Column::CreatedAt)
                    .order_by_asc(kmeans_data::Column::Id)
                    .all(&self.db.session().await?)
                    .await
                    .map_err(repository_error)?
                    .into_iter()
                    .map(kmeans_from_row)
                    .collect()
            })
            .await
    }
}
