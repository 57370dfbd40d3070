//! Rows to domain values and back; the only place that knows both.

use chat_domain::{
    Centroids, Chat, ChatId, Description, KmeansData, KmeansDataId, RepositoryError, Timestamp,
    Title, UserId, Version,
};
use sea_orm::ActiveValue::Set;

use crate::entities::{chats, kmeans_data};
use crate::error::CorruptRow;

fn corrupt(table: &'static str, id: uuid::Uuid, reason: impl ToString) -> RepositoryError {
    RepositoryError::Other(Box::new(CorruptRow {
        table,
        id,
        reason: reason.to_string(),
    }))
}

/// A `chats` row as a [`Chat`]; a row another writer broke is an error, not a panic.
pub(crate) fn chat_from_row(row: chats::Model) -> Result<Chat, RepositoryError> {
    let bad = |reason: String| corrupt("chats", row.id, reason);
    Ok(Chat {
        id: ChatId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        title: Title::parse(&row.title).map_err(|e| bad(format!("title {e}")))?,
        description: row
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| bad(format!("description {e}")))?,
        created_at: Timestamp::from_datetime(row.created_at),
        updated_at: Timestamp::from_datetime(row.updated_at),
        version: Version::new(row.version)
            .ok_or_else(|| bad(format!("version {}", row.version)))?,
    })
}

/// A [`Chat`] as a row to insert.
pub(crate) fn chat_to_row(chat: &Chat) -> chats::ActiveModel {
    chats::ActiveModel {
        id: Set(*chat.id.as_uuid()),
        user_id: Set(*chat.user_id.as_uuid()),
        title: Set(chat.title.as_str().to_owned()),
        description: Set(chat.description.as_ref().map(|d| d.as_str().to_owned())),
        created_at: Set(chat.created_at.as_datetime()),
        updated_at: Set(chat.updated_at.as_datetime()),
        version: Set(chat.version.get()),
    }
}

/// A `kmeans_data` row as [`KmeansData`], re-checking the invariants other
/// writers of the table might have broken.
pub(crate) fn kmeans_from_row(row: kmeans_data::Model) -> Result<KmeansData, RepositoryError> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(row.centroids)
        .map_err(|e| corrupt("kmeans_data", row.id, format!("centroids {e}")))?;
    let centroids =
        Centroids::with_k(i64::from(row.k), rows).map_err(|e| corrupt("kmeans_data", row.id, e))?;
    Ok(KmeansData {
        id: KmeansDataId::from_uuid(row.id),
        chat_id: ChatId::from_uuid(row.chat_id),
        centroids,
        created_at: Timestamp::from_datetime(row.created_at),
    })
}

/// The `k` column of a result; `k` is bounded by what fits a request body, far below `i32::MAX`.
pub(crate) fn k_column(data: &KmeansData) -> Result<i32, RepositoryError> {
    i32::try_from(data.k()).map_err(|_| corrupt("kmeans_data", *data.id.as_uuid(), "k exceeds i32"))
}

/// The `centroids` column: finite values only, so the JSON is exact.
pub(crate) fn centroids_column(data: &KmeansData) -> serde_json::Value {
    serde_json::Value::from(data.centroids.rows().to_vec())
}
