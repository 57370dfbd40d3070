//! Training: k-means (linfa-clustering) on the rows read, with a seeded
//! random number generator so the same file, `k` and seed give the same
//! centroids.

use std::collections::HashSet;

use chat_domain::Centroids;
use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::reading::Dataset;

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// Why no model was trained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainingError {
    /// `k` is zero.
    #[error("--k must be at least 1")]
    NoClusters,
    /// More clusters than rows.
    #[error("--k {k} is larger than the {rows} data rows of {source_name}")]
    MoreClustersThanRows {
        /// The requested number of clusters.
        k: usize,
        /// The number of data rows.
        rows: usize,
        /// The file.
        source_name: String,
    },
    /// Enough rows, but too few different ones: some cluster would be empty.
    #[error("--k {k} is larger than the {distinct} distinct data rows of {source_name}")]
    MoreClustersThanDistinctRows {
        /// The requested number of clusters.
        k: usize,
        /// The number of different rows.
        distinct: usize,
        /// The file.
        source_name: String,
    },
    /// The algorithm itself failed (not expected once the checks above pass).
    #[error("k-means failed: {0}")]
    Failed(String),
}

/// Checks that `k` clusters can be found in `data`, before anything else
/// (connecting to the database, training) is done.
pub fn check_k(data: &Dataset, k: usize) -> Result<(), TrainingError> {
    if k == 0 {
        return Err(TrainingError::NoClusters);
    }
    if k > data.rows.len() {
        return Err(TrainingError::MoreClustersThanRows {
            k,
            rows: data.rows.len(),
            source_name: data.source.clone(),
        });
    }
    // `+ 0.0` turns -0.0 into 0.0: equal points, one bit pattern.
    let distinct: HashSet<Vec<u64>> = data
        .rows
        .iter()
        .map(|row| row.iter().map(|value| (value + 0.0).to_bits()).collect())
        .collect();
    if k > distinct.len() {
        return Err(TrainingError::MoreClustersThanDistinctRows {
            k,
            distinct: distinct.len(),
            source_name: data.source.clone(),
        });
    }
    Ok(())
}

/// Fits `k` clusters to `data` and returns their centres, sorted
/// lexicographically so that the order does not depend on the
/// initialisation.
pub fn train(data: &Dataset, k: usize, seed: u64) -> Result<Centroids, TrainingError> {
    check_k(data, k)?;
    let flat: Vec<f64> = data.rows.iter().flatten().copied().collect();
    let records = Array2::from_shape_vec((data.rows.len(), data.width()), flat)
        .map_err(|error| TrainingError::Failed(error.to_string()))?;
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .fit(&DatasetBase::from(records.clone()))
        .map_err(|error| TrainingError::Failed(error.to_string()))?;
    // linfa stops once the centres move less than its tolerance, so they are
    // close to, not exactly, the means of their clusters; store the means of
    // the final assignment (what k-means defines a centre to be).
    let memberships = model.predict(&records);
    let mut sums = vec![vec![0.0; data.width()]; k];
    let mut counts = vec![0_usize; k];
    for (row, &cluster) in data.rows.iter().zip(memberships.iter()) {
        counts[cluster] += 1;
        for (sum, value) in sums[cluster].iter_mut().zip(row) {
            *sum += value;
        }
    }
    let mut rows: Vec<Vec<f64>> = model
        .centroids()
        .outer_iter()
        .zip(sums.into_iter().zip(counts))
        .map(|(fitted, (sum, count))| match count {
            0 => fitted.to_vec(),
            _ => sum.into_iter().map(|total| total / count as f64).collect(),
        })
        .collect();
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|order| order.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Centroids::new(rows).map_err(|error| TrainingError::Failed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(rows: Vec<Vec<f64>>) -> Dataset {
        Dataset {
            source: "data.csv".to_owned(),
            header: None,
            rows,
        }
    }

    fn blobs() -> Dataset {
        dataset(vec![
            vec![0.0, 0.0],
            vec![0.0, 2.0],
            vec![2.0, 0.0],
            vec![2.0, 2.0],
            vec![100.0, 100.0],
            vec![100.0, 102.0],
            vec![102.0, 100.0],
            vec![102.0, 102.0],
        ])
    }

    #[test]
    fn finds_the_centres_of_separated_groups_sorted() {
        let centroids = train(&blobs(), 2, DEFAULT_SEED).expect("trained");
        assert_eq!(centroids.rows(), &[vec![1.0, 1.0], vec![101.0, 101.0]][..]);
    }

    #[test]
    fn the_same_seed_gives_the_same_centroids() {
        let data = dataset(
            (0..40)
                .map(|i| vec![f64::from(i % 7), f64::from(i)])
                .collect(),
        );
        assert_eq!(train(&data, 3, 7), train(&data, 3, 7));
    }

    #[test]
    fn k_must_fit_the_data() {
        let data = dataset(vec![vec![1.0], vec![2.0], vec![1.0]]);
        assert_eq!(check_k(&data, 0), Err(TrainingError::NoClusters));
        assert_eq!(
            train(&data, 4, 1).map_err(|e| e.to_string()),
            Err("--k 4 is larger than the 3 data rows of data.csv".to_owned())
        );
        assert_eq!(
            train(&data, 3, 1).map_err(|e| e.to_string()),
            Err("--k 3 is larger than the 2 distinct data rows of data.csv".to_owned())
        );
        assert_eq!(
            check_k(&dataset(vec![vec![0.0], vec![-0.0]]), 2),
            Err(TrainingError::MoreClustersThanDistinctRows {
                k: 2,
                distinct: 1,
                source_name: "data.csv".to_owned()
            })
        );
        assert!(train(&data, 2, 1).is_ok());
    }
}
