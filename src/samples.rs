//! The shipped sample data (`sample_data/`: scans, their predictors, targets, a small
//! Fashion-MNIST, the lecture experiment), found at run time so that an installed or moved
//! binary works from any folder.
//!
//! The search list, first match wins: `$NEUREG_SAMPLE_DATA`; the workspace's `sample_data/`;
//! `sample_data/` next to the executable and in its `../share/neureg/`; the `sample_data/` of
//! the source tree the binary was built from (while it still exists).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The variable that names a sample-data folder ahead of the rest of the search list.
pub const SAMPLE_DATA_ENV: &str = "NEUREG_SAMPLE_DATA";

/// The folders that may hold the sample data, in search order (`workspace`: the workspace's
/// root, when one is known).
pub fn sample_roots(workspace: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::var_os(SAMPLE_DATA_ENV)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    roots.extend(workspace.map(|w| w.join("sample_data")));
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(exe_dir.join("sample_data"));
        roots.push(exe_dir.join("../share/neureg/sample_data"));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data"));
    roots
}

/// `relative` (e.g. `scans/scan_1.zip`) in the first sample-data folder that has it, or an
/// error that lists where it looked.
pub fn find_sample(relative: &Path, workspace: Option<&Path>) -> Result<PathBuf> {
    let roots = sample_roots(workspace);
    roots
        .iter()
        .map(|r| r.join(relative))
        .find(|p| p.exists())
        .ok_or_else(|| {
            let looked: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            Error::Config(format!(
                "sample data {} not found; looked in {} (set {SAMPLE_DATA_ENV} to a copy of the \
                 repository's sample_data folder)",
                relative.display(),
                looked.join(", ")
            ))
        })
}

/// A path inside the sample data, for the window's defaults: where it was found, else where
/// the source tree had it (so that the form shows a path and using it gives a clear error).
pub fn sample_path(relative: &str, workspace: Option<&Path>) -> PathBuf {
    find_sample(Path::new(relative), workspace).unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample_data")
            .join(relative)
    })
}

/// A path as typed in a configuration whose first component is `sample_data`, with that
/// component taken off (the part to look up in the search list).
pub fn within_samples(path: &Path) -> Option<&Path> {
    path.strip_prefix("sample_data").ok()
}

/// The shipped sample scans, if the sample data is found.
pub fn sample_scans(workspace: Option<&Path>) -> Vec<PathBuf> {
    let Ok(dir) = find_sample(Path::new("scans"), workspace) else {
        return Vec::new();
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_copy_comes_before_the_source_tree_and_misses_list_the_search() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("sample_data/targets")).unwrap();
        std::fs::write(ws.path().join("sample_data/targets/x.npy"), b"x").unwrap();
        let found = find_sample(Path::new("targets/x.npy"), Some(ws.path())).unwrap();
        assert!(found.starts_with(ws.path()), "{}", found.display());
        // The source tree's copy, when the workspace has none.
        let scans = find_sample(Path::new("scans"), Some(ws.path())).unwrap();
        assert!(scans.ends_with("sample_data/scans") && scans.is_dir());
        let err = find_sample(Path::new("nothing/here.npy"), Some(ws.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nothing/here.npy") && err.contains(&ws.path().display().to_string()),
            "{err}"
        );
        assert_eq!(
            within_samples(Path::new("sample_data/a/b")),
            Some(Path::new("a/b"))
        );
        assert_eq!(within_samples(Path::new("data/a")), None);
    }
}
