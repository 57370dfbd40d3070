//! K-means results: the cluster centres of one trained model, owned by a chat.

use crate::ids::{ChatId, KmeansDataId};
use crate::time::Timestamp;

/// Why a set of centroids (or its declared `k`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CentroidsError {
    /// No rows: `k` must be at least 1.
    #[error("k must be at least 1 (no centroids given)")]
    NoCentroids,
    /// A row with no coordinates.
    #[error("centroid {row} is empty; every centroid needs at least one coordinate")]
    EmptyRow {
        /// Zero-based row index.
        row: usize,
    },
    /// Rows of different lengths.
    #[error("centroid {row} has {actual} coordinates, centroid 0 has {expected}")]
    RaggedRow {
        /// Zero-based row index.
        row: usize,
        /// The width of row 0.
        expected: usize,
        /// The width of this row.
        actual: usize,
    },
    /// NaN or an infinity (JSON cannot carry them, and they mean a broken model).
    #[error("centroid {row}, coordinate {column} is not a finite number")]
    NotFinite {
        /// Zero-based row index.
        row: usize,
        /// Zero-based column index.
        column: usize,
    },
    /// The declared `k` disagrees with the number of rows.
    #[error("k is {k} but {rows} centroids were given")]
    KMismatch {
        /// The declared number of clusters.
        k: i64,
        /// The number of rows.
        rows: usize,
    },
}

/// The cluster centres of one model: `k >= 1` rows, all of the same width `>= 1`,
/// every value finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Centroids(Vec<Vec<f64>>);

impl Centroids {
    /// Validates the rows; `k` is their number.
    pub fn new(rows: Vec<Vec<f64>>) -> Result<Self, CentroidsError> {
        let width = rows.first().ok_or(CentroidsError::NoCentroids)?.len();
        for (row, values) in rows.iter().enumerate() {
            if values.is_empty() {
                return Err(CentroidsError::EmptyRow { row });
            }
            if values.len() != width {
                return Err(CentroidsError::RaggedRow {
                    row,
                    expected: width,
                    actual: values.len(),
                });
            }
            if let Some(column) = values.iter().position(|value| !value.is_finite()) {
                return Err(CentroidsError::NotFinite { row, column });
            }
        }
        Ok(Self(rows))
    }

    /// Validates the rows and that there are exactly `k` of them.
    pub fn with_k(k: i64, rows: Vec<Vec<f64>>) -> Result<Self, CentroidsError> {
        if k < 1 {
            return Err(CentroidsError::NoCentroids);
        }
        if usize::try_from(k).ok() != Some(rows.len()) {
            return Err(CentroidsError::KMismatch {
                k,
                rows: rows.len(),
            });
        }
        Self::new(rows)
    }

    /// The number of clusters (rows), at least 1.
    pub fn k(&self) -> usize {
        self.0.len()
    }

    /// The number of coordinates of each centre, at least 1.
    pub fn dimensions(&self) -> usize {
        self.0[0].len()
    }

    /// The rows.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.0
    }

    /// The owned rows.
    pub fn into_rows(self) -> Vec<Vec<f64>> {
        self.0
    }
}

/// One k-means result, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct KmeansData {
    /// Its id.
    pub id: KmeansDataId,
    /// The chat it belongs to; deleting the chat deletes it.
    pub chat_id: ChatId,
    /// The cluster centres; `k` is their number.
    pub centroids: Centroids,
    /// When it was stored.
    pub created_at: Timestamp,
}

impl KmeansData {
    /// The number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.k()
    }
}

/// Store a k-means result for a chat (what the trainer sends).
#[derive(Clone, Debug, PartialEq)]
pub struct NewKmeansData {
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// The cluster centres.
    pub centroids: Centroids,
}

impl NewKmeansData {
    /// The stored form, with a fresh id, created at `now`.
    pub fn into_kmeans_data(self, now: Timestamp) -> KmeansData {
        KmeansData {
            id: KmeansDataId::generate(),
            chat_id: self.chat_id,
            centroids: self.centroids,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_a_regular_matrix() {
        let centroids = Centroids::with_k(3, vec![vec![0.0, 1.5], vec![2.0, 3.0], vec![4.5, 0.5]])
            .expect("valid centroids");
        assert_eq!((centroids.k(), centroids.dimensions()), (3, 2));
    }

    #[test]
    fn refuses_each_broken_invariant() {
        assert_eq!(Centroids::new(vec![]), Err(CentroidsError::NoCentroids));
        assert_eq!(
            Centroids::new(vec![vec![]]),
            Err(CentroidsError::EmptyRow { row: 0 })
        );
        assert_eq!(
            Centroids::new(vec![vec![1.0], vec![1.0, 2.0]]),
            Err(CentroidsError::RaggedRow {
                row: 1,
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(
            Centroids::new(vec![vec![1.0, f64::NAN]]),
            Err(CentroidsError::NotFinite { row: 0, column: 1 })
        );
        assert_eq!(
            Centroids::new(vec![vec![f64::NEG_INFINITY]]),
            Err(CentroidsError::NotFinite { row: 0, column: 0 })
        );
        assert_eq!(
            Centroids::with_k(0, vec![]),
            Err(CentroidsError::NoCentroids)
        );
        assert_eq!(
            Centroids::with_k(2, vec![vec![1.0]]),
            Err(CentroidsError::KMismatch { k: 2, rows: 1 })
        );
    }

    proptest! {
        #[test]
        fn accepted_centroids_keep_every_invariant(
            rows in prop::collection::vec(prop::collection::vec(prop::num::f64::ANY, 0..4), 0..5),
        ) {
            if let Ok(centroids) = Centroids::new(rows.clone()) {
                prop_assert!(centroids.k() >= 1);
                prop_assert!(centroids.dimensions() >= 1);
                prop_assert!(centroids.rows().iter().all(|row| row.len() == centroids.dimensions()));
                prop_assert!(centroids.rows().iter().flatten().all(|value| value.is_finite()));
                prop_assert_eq!(centroids.into_rows(), rows);
            }
        }

        #[test]
        fn regular_finite_matrices_are_always_accepted(
            k in 1usize..6, width in 1usize..6, seed in prop::collection::vec(-1e9f64..1e9, 36),
        ) {
            let rows: Vec<Vec<f64>> = (0..k).map(|r| (0..width).map(|c| seed[r * 6 + c]).collect()).collect();
            let declared = i64::try_from(k).expect("small k");
            prop_assert!(Centroids::with_k(declared, rows).is_ok());
        }
    }
}
