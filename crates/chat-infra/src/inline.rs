//! Statements with their parameters written in, for transaction-mode poolers.
//!
//! Behind a pooler in transaction mode (PgBouncer `pool_mode = transaction`,
//! pgcat, Supavisor) each transaction of a client may run on another server
//! connection, and outside a transaction every `Sync` of the extended protocol
//! ends one. sqlx prepares a statement (Parse, Describe, Sync) before it binds
//! and executes it (Bind, Execute, Sync), so the two halves may reach different
//! server connections, whether the statement is named (`prepared statement
//! "sqlx_s_1" already exists` / `does not exist`) or unnamed (another client's
//! statement could be executed in its place). Behind such a pooler each
//! statement is therefore sent as one simple-protocol query: one message, one
//! round trip, its own transaction.
//!
//! The parameters become literals cast to the type they would have been bound
//! with (`CAST('…' AS uuid)`), so the statement means what the bound one means.
//! Strings are written by sea-query's PostgreSQL writer as escape-string
//! literals (`E'…'`, every quote and backslash escaped), which do not depend
//! on `standard_conforming_strings`.
//!
//! The scanner knows the SQL sea-query generates: `'…'` and `E'…'` strings and
//! `"…"` identifiers are copied as they are; `$n` elsewhere is a placeholder.
//! (Dollar-quoted strings and comments, which sea-query never writes, are not
//! recognised.)

use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder, Value};

/// A placeholder without a value (a bug in the statement, never user input).
#[derive(Debug, thiserror::Error)]
#[error("statement placeholder ${0} has no value ({1} given)")]
pub(crate) struct MissingValue(usize, usize);

/// `sql` with every `$n` replaced by the literal of `values[n - 1]`.
pub(crate) fn inline(sql: &str, values: &[Value]) -> Result<String, MissingValue> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 24 * values.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                // E'…' (not the end of an identifier such as `name'`) takes backslash escapes.
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_identifier_byte(bytes[i - 2]));
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if escapes => i += 2,
                        b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'"' if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !is_identifier_byte(bytes[i - 1])) =>
            {
                let start = i + 1;
                let end = start
                    + bytes[start..]
                        .iter()
                        .take_while(|byte| byte.is_ascii_digit())
                        .count();
                let number: usize = sql[start..end].parse().unwrap_or(0);
                let value = number
                    .checked_sub(1)
                    .and_then(|index| values.get(index))
                    .ok_or(MissingValue(number, values.len()))?;
                out.push_str(&sql[copied..i]);
                write_literal(&mut out, value);
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(out)
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// The PostgreSQL type sqlx binds a value as (see sea-query-sqlx), if we write it.
fn bound_type(value: &Value) -> Option<&'static str> {
    Some(match value {
        Value::Bool(_) => "boolean",
        Value::SmallInt(_) | Value::TinyUnsigned(_) => "int2",
        Value::Int(_) | Value::SmallUnsigned(_) => "int4",
        Value::BigInt(_) | Value::Unsigned(_) | Value::BigUnsigned(_) => "int8",
        Value::Float(_) => "float4",
        Value::Double(_) => "float8",
        Value::String(_) | Value::Char(_) => "text",
        Value::Bytes(_) => "bytea",
        Value::Json(_) => "jsonb",
        Value::ChronoDateTimeUtc(_) => "timestamptz",
        Value::Uuid(_) => "uuid",
        _ => return None,
    })
}

fn write_literal(out: &mut String, value: &Value) {
    let non_finite = |v: f64| {
        if v.is_nan() {
            "'NaN'"
        } else if v > 0.0 {
            "'Infinity'"
        } else {
            "'-Infinity'"
        }
    };
    let cast = bound_type(value);
    if cast.is_some() {
        out.push_str("CAST(");
    } else {
        out.push('(');
    }
    match value {
        Value::Double(Some(v)) if !v.is_finite() => out.push_str(non_finite(*v)),
        Value::Float(Some(v)) if !v.is_finite() => out.push_str(non_finite(f64::from(*v))),
        // Writing into a String cannot fail.
        _ => PostgresQueryBuilder
            .write_value(out, value)
            .unwrap_or_default(),
    }
    match cast {
        Some(cast) => {
            out.push_str(" AS ");
            out.push_str(cast);
            out.push(')');
        }
        None => out.push(')'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_typed_literals() {
        let id = uuid::Uuid::nil();
        let sql = r#"SELECT "a" FROM "t" WHERE "id" = $1 AND "n" > $2 LIMIT $3"#;
        let values = [Value::from(id), Value::from(-5_i64), Value::from(11_u64)];
        assert_eq!(
            inline(sql, &values).expect("inlined"),
            r#"SELECT "a" FROM "t" WHERE "id" = CAST('00000000-0000-0000-0000-000000000000' AS uuid) AND "n" > CAST(-5 AS int8) LIMIT CAST(11 AS int8)"#
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_escape_the_literal() {
        let evil = r"x' OR 1=1; --\' \";
        let out = inline("SELECT $1", &[Value::from(evil)]).expect("inlined");
        assert_eq!(out, r"SELECT CAST(E'x\' OR 1=1; --\\\' \\' AS text)");
        let none = inline("SELECT $1", &[Value::String(None)]).expect("inlined");
        assert_eq!(none, "SELECT CAST(NULL AS text)");
    }

    #[test]
    fn dollars_inside_strings_and_identifiers_are_left_alone() {
        let sql = r#"SELECT '$1', E'\'$1', "$1", a$1, $1"#;
        assert_eq!(
            inline(sql, &[Value::from(7_i32)]).expect("inlined"),
            r#"SELECT '$1', E'\'$1', "$1", a$1, CAST(7 AS int4)"#
        );
    }

    #[test]
    fn a_placeholder_without_value_is_an_error() {
        assert!(inline("SELECT $2", &[Value::from(1_i32)]).is_err());
        assert!(inline("SELECT $0", &[Value::from(1_i32)]).is_err());
        assert_eq!(inline("SELECT 1", &[]).expect("inlined"), "SELECT 1");
    }

    #[test]
    fn non_finite_floats_are_quoted() {
        let out = inline(
            "SELECT $1, $2",
            &[Value::from(f64::NAN), Value::from(f64::INFINITY)],
        )
        .expect("inlined");
        assert_eq!(
            out,
            "SELECT CAST('NaN' AS float8), CAST('Infinity' AS float8)"
        );
    }
}
