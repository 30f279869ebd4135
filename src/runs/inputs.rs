//! The files a run depends on (its data set, the target's images, the target) as its
//! `config.json` stores them: absolute, so that the run opens from any working folder. Runs
//! stored before kept them as typed, relative to wherever `neureg` was started; those are
//! looked for where they most likely were.

use std::path::{Path, PathBuf};

use crate::samples::{find_sample, within_samples};

/// `path` if it exists, canonical.
fn existing(path: PathBuf) -> Option<PathBuf> {
    path.exists()
        .then(|| std::fs::canonicalize(&path).unwrap_or(path))
}

/// A relative `sample_data/...` path from the sample-data search list.
fn in_samples(path: &Path, workspace: Option<&Path>) -> Option<PathBuf> {
    within_samples(path).and_then(|rest| find_sample(rest, workspace).ok().and_then(existing))
}

/// `path` as a new run takes it: against the working folder when it exists there; a
/// `sample_data/...` path that does not (the defaults, typed anywhere) from the sample-data
/// search list; otherwise made absolute as it is, for the error on use to name.
pub fn absolute_input(path: &Path, workspace: Option<&Path>) -> PathBuf {
    existing(path.to_path_buf())
        .or_else(|| in_samples(path, workspace))
        .unwrap_or_else(|| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// A path as stored in the configuration of the run in `dir`. Absolute paths stay as they are.
/// Relative ones (runs stored before paths were made absolute) are looked for relative to the
/// run folder, the working folder, each folder above the run (a run in `runs/` of the folder it
/// was started from), then in the sample data; one found nowhere stays as stored.
pub fn stored_input(path: &Path, dir: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::iter::once(dir.join(path))
        .chain(std::iter::once(path.to_path_buf()))
        .chain(dir.ancestors().skip(1).map(|a| a.join(path)))
        .find_map(existing)
        .or_else(|| in_samples(path, None))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_relative_paths_are_found_above_the_run_and_in_the_samples() {
        let project = tempfile::tempdir().unwrap();
        let project = std::fs::canonicalize(project.path()).unwrap();
        std::fs::create_dir_all(project.join("data/set")).unwrap();
        let run = project.join("runs/none-a20-seed0");
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(
            stored_input(Path::new("data/set"), &run),
            project.join("data/set")
        );
        let samples = stored_input(Path::new("sample_data/fashion-mnist"), &run);
        assert!(samples.is_absolute() && samples.ends_with("sample_data/fashion-mnist"));
        assert!(samples.is_dir());
        // Not found anywhere: as stored, for the error to name.
        assert_eq!(
            stored_input(Path::new("gone/t.npy"), &run),
            Path::new("gone/t.npy")
        );
        let abs = project.join("data/set");
        assert_eq!(stored_input(&abs, &run), abs);
    }

    #[test]
    fn new_inputs_become_absolute() {
        let samples = absolute_input(Path::new("sample_data/scans/scan_1.zip"), None);
        assert!(
            samples.is_absolute() && samples.is_file(),
            "{}",
            samples.display()
        );
        let missing = absolute_input(Path::new("no/such.npy"), None);
        assert!(missing.is_absolute() && missing.ends_with("no/such.npy"));
    }
}
