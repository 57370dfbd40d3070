//! The SeaORM implementation of the domain's ports, one code path for
//! PostgreSQL and SQLite. Every chat query carries the owner.

use async_trait::async_trait;
use chat_domain::{
    Chat, ChatChanges, ChatId, ChatRepository, DescriptionPatch, ExpectedVersion,
    IdempotentOutcome, IdempotentRequest, KmeansData, KmeansDataRepository, Page, PageRequest,
    PageStart, RepositoryError, StoredResponse, Timestamp, UserId,
};
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, OnConflict, Query, SelectStatement, WithClause,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Statement, Value,
};

use crate::database::{Access, Database};
use crate::entities::{chats, idempotency_keys, kmeans_data, user_chat_counts, users};
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

    /// The key's stored row, in a statement of its own.
    async fn stored_key(
        session: &Session,
        owner: UserId,
        request: &IdempotentRequest,
    ) -> Result<Option<StoredKeyRow>, RepositoryError> {
        idempotency_keys::Entity::find_by_id((*owner.as_uuid(), request.key.as_str().to_owned()))
            .select_only()
            .column(idempotency_keys::Column::Fingerprint)
            .column(idempotency_keys::Column::ResponseStatus)
            .column(idempotency_keys::Column::ResponseHeaders)
            .column(idempotency_keys::Column::ResponseBody)
            .into_model::<StoredKeyRow>()
            .one(session)
            .await
            .map_err(repository_error)
    }

    /// PostgreSQL: [`POSTGRES_KEYED_INSERT`], one statement.
    async fn insert_keyed_postgres(
        session: &Session,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError> {
        let mut values = key_values(chat, request)?;
        values.push(chat.title.as_str().into());
        values.push(
            chat.description
                .as_ref()
                .map(|d| d.as_str().to_owned())
                .into(),
        );
        values.push(chat.version.get().into());
        let statement =
            Statement::from_sql_and_values(DbBackend::Postgres, POSTGRES_KEYED_INSERT, values);
        let row = session
            .query_one_raw(statement)
            .await
            .map_err(repository_error)?
            .ok_or_else(|| RepositoryError::Other("the keyed insert returned no row".into()))?;
        let got: bool = row.try_get("", "got").map_err(repository_error)?;
        let created: i64 = row.try_get("", "created").map_err(repository_error)?;
        let fingerprint: Option<String> =
            row.try_get("", "fingerprint").map_err(repository_error)?;
        if let Some(fingerprint) = fingerprint {
            let stored = StoredKeyRow {
                fingerprint,
                response_status: row
                    .try_get("", "response_status")
                    .map_err(repository_error)?,
                response_headers: row
                    .try_get("", "response_headers")
                    .map_err(repository_error)?,
                response_body: row.try_get("", "response_body").map_err(repository_error)?,
            };
            return stored.outcome(request);
        }
        if created == 1 {
            return Ok(IdempotentOutcome::Created);
        }
        if !got {
            return Ok(IdempotentOutcome::InFlight);
        }
        // The lock was free but the key was taken: its first request committed
        // after this statement's snapshot was taken. Read it again, now visible.
        match Self::stored_key(session, chat.user_id, request).await? {
            Some(stored) => stored.outcome(request),
            None => Ok(IdempotentOutcome::InFlight),
        }
    }

    /// SQLite: one transaction; the key's row is written first, so the
    /// transaction holds the write lock before it decides anything.
    async fn insert_keyed_sqlite(
        session: Session,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError> {
        let backend = session.get_database_backend();
        let insert_key = Statement::from_sql_and_values(
            backend,
            "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, chat_id, \
             response_status, response_headers, response_body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, idempotency_key) DO NOTHING",
            key_values(chat, request)?,
        );
        let transaction = session.begin().await?;
        let inserted = transaction
            .execute_raw(insert_key)
            .await
            .map_err(repository_error)?
            .rows_affected();
        if inserted == 0 {
            // Dropping the transaction rolls it back: nothing was written.
            return match Self::stored_key(&transaction, chat.user_id, request).await? {
                Some(stored) => stored.outcome(request),
                None => Ok(IdempotentOutcome::InFlight),
            };
        }
        transaction
            .execute(&provision_query(chat))
            .await
            .map_err(repository_error)?;
        transaction
            .execute(&chats::Entity::insert(chat_to_row(chat)).into_query())
            .await
            .map_err(repository_error)?;
        transaction.commit().await?;
        Ok(IdempotentOutcome::Created)
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

/// A keyed create on PostgreSQL, in one statement (its own transaction):
///
/// - `key_lock`: `pg_try_advisory_xact_lock` on a hash of (user, key). It never
///   waits: `false` means another statement with this key holds it, i.e. is in
///   flight. Held until this statement's transaction ends.
/// - `existing`: the key's stored row, if committed before this statement.
/// - `fresh`: one row only when the lock was taken and the key is unused; every
///   write below selects from it, so a request that finds the key in use or in
///   flight writes (and waits for) nothing, not even the `users` row.
/// - `provisioned`, `stored`, `created`: the owner's row, the key's row and the
///   chat, which is inserted from the key's `RETURNING`: both or neither.
///
/// $1 user, $2 key, $3 fingerprint, $4 chat id, $5 status, $6 headers, $7 body,
/// $8 created_at, $9 title, $10 description, $11 version.
const POSTGRES_KEYED_INSERT: &str = r#"
WITH key_lock AS (
    SELECT pg_try_advisory_xact_lock(hashtextextended($1::text || ' ' || $2, 0)) AS got
),
existing AS (
    SELECT fingerprint, response_status, response_headers, response_body
      FROM idempotency_keys
     WHERE user_id = $1 AND idempotency_key = $2
),
fresh AS (
    SELECT got FROM key_lock WHERE got AND NOT EXISTS (SELECT 1 FROM existing)
),
provisioned AS (
    INSERT INTO users (id, created_at)
    SELECT $1, $8 FROM fresh
    ON CONFLICT (id) DO NOTHING
),
stored AS (
    INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, chat_id,
                                  response_status, response_headers, response_body, created_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM fresh
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING chat_id
),
created AS (
    INSERT INTO chats (id, user_id, title, description, created_at, updated_at, version)
    SELECT chat_id, $1, $9, $10, $8, $8, $11 FROM stored
    RETURNING id
)
SELECT (SELECT got FROM key_lock) AS got,
       (SELECT count(*) FROM created) AS created,
       existing.fingerprint, existing.response_status,
       existing.response_headers, existing.response_body
  FROM (SELECT 1) AS one LEFT JOIN existing ON true
"#;

/// The purge's batch: the oldest expired keys, skipping rows another purge
/// holds, so purges never wait for each other.
const POSTGRES_PURGE: &str = "DELETE FROM idempotency_keys WHERE (user_id, idempotency_key) IN \
     (SELECT user_id, idempotency_key FROM idempotency_keys WHERE created_at < $1 \
      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

const SQLITE_PURGE: &str = "DELETE FROM idempotency_keys WHERE (user_id, idempotency_key) IN \
     (SELECT user_id, idempotency_key FROM idempotency_keys WHERE created_at < ? \
      ORDER BY created_at LIMIT ?)";

/// A stored key's fingerprint and response, as read back.
#[derive(Debug, FromQueryResult)]
struct StoredKeyRow {
    fingerprint: String,
    response_status: i16,
    response_headers: String,
    response_body: String,
}

impl StoredKeyRow {
    /// A replay when the fingerprints agree, else the key was reused.
    fn outcome(self, request: &IdempotentRequest) -> Result<IdempotentOutcome, RepositoryError> {
        if self.fingerprint != request.fingerprint {
            return Ok(IdempotentOutcome::KeyReused);
        }
        let headers: Vec<(String, String)> = serde_json::from_str(&self.response_headers)
            .map_err(|error| RepositoryError::Other(Box::new(error)))?;
        Ok(IdempotentOutcome::Replayed(StoredResponse {
            status: u16::try_from(self.response_status)
                .map_err(|error| RepositoryError::Other(Box::new(error)))?,
            headers,
            body: self.response_body,
        }))
    }
}

/// The key's row as values: (user, key, fingerprint, chat, status, headers, body, created_at).
fn key_values(chat: &Chat, request: &IdempotentRequest) -> Result<Vec<Value>, RepositoryError> {
    let headers = serde_json::to_string(&request.response.headers)
        .map_err(|error| RepositoryError::Other(Box::new(error)))?;
    let status = i16::try_from(request.response.status)
        .map_err(|error| RepositoryError::Other(Box::new(error)))?;
    Ok(vec![
        (*chat.user_id.as_uuid()).into(),
        request.key.as_str().into(),
        request.fingerprint.as_str().into(),
        (*chat.id.as_uuid()).into(),
        status.into(),
        headers.into(),
        request.response.body.as_str().into(),
        chat.created_at.as_datetime().into(),
    ])
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

/// The owner's row, for their first write. ON CONFLICT DO NOTHING makes
/// concurrent first writes race-free.
fn provision_query(chat: &Chat) -> sea_orm::sea_query::InsertStatement {
    Query::insert()
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
        .to_owned()
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
        self.db
            .run(Access::Write, || async move {
                let provision = provision_query(chat);
                let insert = chats::Entity::insert(chat_to_row(chat)).into_query();
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

    async fn insert_idempotent(
        &self,
        chat: &Chat,
        request: &IdempotentRequest,
    ) -> Result<IdempotentOutcome, RepositoryError> {
        self.db
            .run(Access::Write, || async move {
                let session = self.db.session().await?;
                if session.supports_writable_cte() {
                    Self::insert_keyed_postgres(&session, chat, request).await
                } else {
                    Self::insert_keyed_sqlite(session, chat, request).await
                }
            })
            .await
    }

    async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError> {
        self.db
            .run(Access::Write, || async move {
                let session = self.db.session().await?;
                let backend = session.get_database_backend();
                let sql = if backend == DbBackend::Postgres {
                    POSTGRES_PURGE
                } else {
                    SQLITE_PURGE
                };
                let statement = Statement::from_sql_and_values(
                    backend,
                    sql,
                    [created_before.as_datetime().into(), i64::from(limit).into()],
                );
                Ok(session
                    .execute_raw(statement)
                    .await
                    .map_err(repository_error)?
                    .rows_affected())
            })
            .await
    }

    async fn find(&self, owner: UserId, id: ChatId) -> Result<Option<Chat>, RepositoryError> {
        self.db
            .run(Access::Read, || async move {
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
            .run(Access::Read, || async move {
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
            .run(Access::Write, || async move {
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
            .run(Access::Write, || async move {
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
            .run(Access::Write, || async move {
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
            .run(Access::Read, || async move {
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
