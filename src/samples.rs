//! The shipped sample data (`sample_data/`): scans, their predictors, targets and a small
//! Fashion-MNIST.

use std::path::PathBuf;

/// A path inside the shipped `sample_data/` of this build's source tree.
pub fn sample_path(relative: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(relative)
}

/// The shipped sample scans, if this build's source tree still has them.
pub fn sample_scans() -> Vec<PathBuf> {
    let dir = sample_path("scans");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "zip"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}
