//! The one collector of invalid fields, for request bodies and for path and
//! query parameters alike: every problem is noted, and a single 422 lists them
//! all.

use crate::error::{ApiError, FieldError};

/// Where the fields come from, which decides the 422's `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Body,
    Parameters,
}

/// Invalid fields noted so far.
#[derive(Debug)]
pub struct FieldErrors {
    source: Source,
    errors: Vec<FieldError>,
}

impl FieldErrors {
    /// Collects the fields of a request body.
    pub fn body() -> Self {
        Self {
            source: Source::Body,
            errors: Vec::new(),
        }
    }

    /// Collects path and query parameters.
    pub fn parameters() -> Self {
        Self {
            source: Source::Parameters,
            errors: Vec::new(),
        }
    }

    /// Notes that `field` is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// The value, or its error noted.
    pub fn take<T>(&mut self, value: Option<Result<T, FieldError>>) -> Option<T> {
        match value? {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was noted, else the 422 listing everything.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// The value when it is there and nothing was noted, else the 422.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.is_empty() => Ok(value),
            _ => Err(self.into_error()),
        }
    }

    /// The 422 listing everything noted.
    pub fn into_error(self) -> ApiError {
        match self.source {
            Source::Body => ApiError::invalid_body(self.errors),
            Source::Parameters => ApiError::invalid_parameters(self.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(error: ApiError) -> (&'static str, Vec<(String, String)>) {
        match error {
            ApiError::Invalid { detail, errors } => (
                detail,
                errors.into_iter().map(|e| (e.field, e.message)).collect(),
            ),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn every_noted_field_is_listed_in_order_with_the_sources_detail() {
        let mut errors = FieldErrors::body();
        errors.add("title", "is required");
        assert_eq!(errors.take(Some(Ok::<_, FieldError>(1))), Some(1));
        assert_eq!(
            errors.take(Some(Err::<u8, _>(FieldError::new(
                "titel",
                "unknown field"
            )))),
            None
        );
        assert_eq!(errors.take(None::<Result<u8, FieldError>>), None);
        let (detail, listed) = listed(errors.finish().expect_err("invalid"));
        assert_eq!(detail, "request body is invalid");
        assert_eq!(
            listed,
            [
                ("title".into(), "is required".into()),
                ("titel".into(), "unknown field".into())
            ]
        );
    }

    #[test]
    fn parameters_answer_with_their_own_detail_and_nothing_noted_is_fine() {
        assert!(FieldErrors::parameters().finish().is_ok());
        assert_eq!(FieldErrors::parameters().finish_with(Some(3)).ok(), Some(3));
        let (detail, listed) = listed(
            FieldErrors::parameters()
                .finish_with(None::<u8>)
                .expect_err("no value"),
        );
        assert_eq!(detail, "request parameters are invalid");
        assert!(listed.is_empty());
    }
}
