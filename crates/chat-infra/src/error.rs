//! The one place where database errors become the domain's [`RepositoryError`].

use chat_domain::RepositoryError;
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};

/// Classifies a SeaORM error: constraint violations are conflicts; anything
/// that means "the database cannot be reached or answer in time" is
/// `Unavailable` (the HTTP layer turns it into 503); the rest is `Other`.
pub(crate) fn repository_error(error: DbErr) -> RepositoryError {
    if let DbErr::Conn(RuntimeErr::SqlxError(cause))
    | DbErr::Exec(RuntimeErr::SqlxError(cause))
    | DbErr::Query(RuntimeErr::SqlxError(cause)) = &error
    {
        hint_at_pooler(cause);
    }
    if let Some(violation) = error.sql_err() {
        return RepositoryError::Conflict(violation.to_string());
    }
    if is_unavailable(&error) {
        RepositoryError::Unavailable(Box::new(error))
    } else {
        RepositoryError::Other(Box::new(error))
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause)) => {
            sqlx_unavailable(cause)
        }
        _ => false,
    }
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(database) => {
            database.code().is_some_and(|code| unavailable_code(&code))
        }
        _ => false,
    }
}

/// SQLSTATE (PostgreSQL) and result codes (SQLite) that mean "try again later".
fn unavailable_code(code: &str) -> bool {
    // Class 08: connection exceptions, e.g. 08006 connection_failure.
    code.starts_with("08")
        || matches!(
            code,
            "53300" // too_many_connections
            | "57014" // query_canceled (statement_timeout)
            | "57P01" // admin_shutdown
            | "57P02" // crash_shutdown
            | "57P03" // cannot_connect_now (starting up, recovering)
            | "40001" // serialization_failure
            | "40P01" // deadlock_detected
            | "5" // SQLITE_BUSY
            | "6" // SQLITE_LOCKED
            | "517" // SQLITE_BUSY_SNAPSHOT
        )
}

/// Whether the server's answer says a transaction-mode pooler sits in between
/// and the service was not told (`DATABASE_POOLER`): named statements that
/// collide or vanish between transactions, or a startup parameter the pooler
/// refuses.
pub(crate) fn looks_like_a_pooler(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    let message = database.message();
    let statement_trouble = matches!(database.code().as_deref(), Some("42P05" | "26000"))
        && message.contains("prepared statement");
    statement_trouble || message.contains("unsupported startup parameter")
}

/// Logs, once per process, what to do when the database looks like a
/// transaction-mode pooler the service was not configured for.
pub(crate) fn hint_at_pooler(error: &sqlx::Error) {
    static HINTED: std::sync::Once = std::sync::Once::new();
    if looks_like_a_pooler(error) {
        HINTED.call_once(|| {
            tracing::error!(
                %error,
                "the database connection goes through a transaction-mode pooler \
                 (PgBouncer pool_mode = transaction, pgcat, Supavisor): set \
                 DATABASE_POOLER=transaction, and ignore_startup_parameters = \
                 extra_float_digits in the pooler's configuration"
            );
        });
    }
}

/// A repository call that took longer than the configured bound.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {0:?}")]
pub(crate) struct TimedOut(pub(crate) std::time::Duration);

/// A stored row that breaks a domain invariant (written by someone else).
#[derive(Debug, thiserror::Error)]
#[error("corrupt {table} row {id}: {reason}")]
pub(crate) struct CorruptRow {
    pub(crate) table: &'static str,
    pub(crate) id: uuid::Uuid,
    pub(crate) reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;

    #[test]
    fn pool_exhaustion_and_io_are_unavailable() {
        assert!(matches!(
            repository_error(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
            RepositoryError::Unavailable(_)
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Io(refused).into()));
        assert!(matches!(
            repository_error(error),
            RepositoryError::Unavailable(_)
        ));
    }

    #[test]
    fn decoding_trouble_is_a_bug_not_an_outage() {
        let error = DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::RowNotFound.into()));
        assert!(matches!(repository_error(error), RepositoryError::Other(_)));
        assert!(matches!(
            repository_error(DbErr::Custom("x".into())),
            RepositoryError::Other(_)
        ));
    }

    #[test]
    fn transient_server_codes_are_unavailable() {
        for code in ["08006", "57P01", "57P03", "53300", "5"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
