//! The workspace (the README's "Workspace and sample data"): the folder where neureg keeps predictors, targets, runs,
//! experiments and exports unless told otherwise. `--workspace DIR`, else `$NEUREG_WORKSPACE`,
//! else `workspace/` in the platform's data directory (Linux `~/.local/share/neureg`, macOS
//! `~/Library/Application Support/neureg`, Windows `%APPDATA%\neureg\data`), or, on a machine
//! without one (no home folder), `neureg-workspace/` in the working folder. Its subfolders are
//! made when something is written there.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The variable that chooses the workspace when `--workspace` is not given.
pub const WORKSPACE_ENV: &str = "NEUREG_WORKSPACE";

/// A workspace folder (absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Its root.
    pub root: PathBuf,
}

impl Workspace {
    /// The workspace at `root`, made absolute against the working folder.
    pub fn at(root: &Path) -> Result<Workspace> {
        let root = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        if root.exists() && !root.is_dir() {
            return Err(Error::file(
                root.display(),
                "is a file; a workspace is a folder",
            ));
        }
        Ok(Workspace { root })
    }

    /// The workspace chosen by `flag` (`--workspace`), else by `$NEUREG_WORKSPACE`, else the
    /// default in the platform's data directory (else in the working folder).
    pub fn locate(flag: Option<&Path>) -> Result<Workspace> {
        if let Some(dir) = flag {
            return Workspace::at(dir);
        }
        if let Some(dir) = std::env::var_os(WORKSPACE_ENV).filter(|v| !v.is_empty()) {
            return Workspace::at(Path::new(&dir));
        }
        match eframe::storage_dir("neureg") {
            Some(data) => Workspace::at(&data.join("workspace")),
            None => Workspace::at(Path::new("neureg-workspace")),
        }
    }

    /// Classifier runs (`neureg train`, the Training tab).
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Fitted predictors (`neureg fit-predictor`, the Predictor tab).
    pub fn predictors(&self) -> PathBuf {
        self.root.join("predictors")
    }

    /// Regularisation targets.
    pub fn targets(&self) -> PathBuf {
        self.root.join("targets")
    }

    /// Experiments (`neureg experiment`, the Experiment tab).
    pub fn experiments(&self) -> PathBuf {
        self.root.join("experiments")
    }

    /// Figures and tables exported from the window.
    pub fn exports(&self) -> PathBuf {
        self.root.join("exports")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_and_relative_roots_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::locate(Some(dir.path())).unwrap();
        assert_eq!(ws.root, dir.path());
        assert_eq!(ws.runs(), dir.path().join("runs"));
        let relative = Workspace::at(Path::new("some/where")).unwrap();
        assert!(relative.root.is_absolute() && relative.root.ends_with("some/where"));
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let err = Workspace::at(&file).unwrap_err().to_string();
        assert!(err.contains("is a file"), "{err}");
    }
}
