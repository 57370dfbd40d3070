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
    // Class 08: connection exceptions (08006 connection_failure, …).
    // Class 53: insufficient resources (53300 too_many_connections, disk full, …).
    // Class 57P: the server is going away or not there yet (57P01
    //   admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, …).
    // Class 58: system errors outside PostgreSQL (58030 io_error, …).
    ["08", "53", "57P", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(
            code,
            "25006" // read_only_sql_transaction: a standby, or a demoted primary
            | "57014" // query_canceled (statement_timeout)
            | "40001" // serialization_failure (after one retry, see `retry`)
            | "40P01" // deadlock_detected (after one retry, see `retry`)
            | "5" // SQLITE_BUSY
            | "6" // SQLITE_LOCKED
            | "517" // SQLITE_BUSY_SNAPSHOT
        )
}

/// Whether a failed repository call may be run again, and on what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not safe, or not useful: the error is the answer.
    No,
    /// The connection was found dead (the server ended it while it sat in the
    /// pool, or the network dropped it), and the others may be too. A read
    /// runs again on a connection checked afresh; a write does not, since the
    /// statement may have reached the server.
    ConnectionLost,
    /// The server refused the statement because this database is read-only
    /// (25006): nothing was done. Any call runs again once on a new
    /// connection; after a failover that one reaches the new primary.
    OnNewConnection,
    /// The server rolled the statement back (40001 serialization failure,
    /// 40P01 deadlock): nothing was done, and running it again is how these
    /// are meant to be handled.
    Again,
}

/// What to do about a failed repository call (see [`Retry`]). Only errors of
/// a statement count: a connection that could not be had is not retried (the
/// pool already waited for one).
pub(crate) fn retry(error: &RepositoryError) -> Retry {
    let RepositoryError::Unavailable(cause) = error else {
        return Retry::No;
    };
    let Some(
        DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause)),
    ) = cause.downcast_ref::<DbErr>()
    else {
        return Retry::No;
    };
    match &**cause {
        sqlx::Error::Io(_) => Retry::ConnectionLost,
        sqlx::Error::Database(database) => match database.code().as_deref() {
            Some("25006") => Retry::OnNewConnection,
            Some("40001" | "40P01") => Retry::Again,
            Some(code) if code.starts_with("08") || code == "57P01" || code == "57P02" => {
                Retry::ConnectionLost
            }
            _ => Retry::No,
        },
        _ => Retry::No,
    }
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

    fn server_error(code: &str) -> RepositoryError {
        #[derive(Debug)]
        struct Answer(String);
        impl std::fmt::Display for Answer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "server error {}", self.0)
            }
        }
        impl std::error::Error for Answer {}
        impl sqlx::error::DatabaseError for Answer {
            fn message(&self) -> &str {
                "server error"
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.as_str().into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        let error = sqlx::Error::Database(Box::new(Answer(code.to_owned())));
        repository_error(DbErr::Query(RuntimeErr::SqlxError(error.into())))
    }

    #[test]
    fn what_is_retried_and_on_what() {
        assert_eq!(retry(&server_error("25006")), Retry::OnNewConnection);
        assert_eq!(retry(&server_error("40001")), Retry::Again);
        assert_eq!(retry(&server_error("40P01")), Retry::Again);
        assert_eq!(retry(&server_error("57P01")), Retry::ConnectionLost);
        assert_eq!(retry(&server_error("08006")), Retry::ConnectionLost);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let io = DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Io(reset).into()));
        assert_eq!(retry(&repository_error(io)), Retry::ConnectionLost);
        // A timeout spent the budget; a full pool already waited; a conflict is an answer.
        assert_eq!(retry(&server_error("57014")), Retry::No);
        assert_eq!(retry(&server_error("53300")), Retry::No);
        assert_eq!(retry(&server_error("23505")), Retry::No);
        assert_eq!(
            retry(&repository_error(DbErr::ConnectionAcquire(
                ConnAcquireErr::Timeout
            ))),
            Retry::No
        );
    }

    #[test]
    fn transient_server_codes_are_unavailable() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P03", "57P04", "58030", "25006",
            "57014", "40001", "40P01", "5",
        ] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "22008", "25001", "57000"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
