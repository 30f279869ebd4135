//! The layout of a classifier run's folder, written down here and nowhere else: its
//! configuration, metrics, checkpoint and stored results.

use std::path::{Path, PathBuf};

/// A classifier run's folder, naming the files it holds.
#[derive(Debug, Clone, Copy)]
pub struct RunDir<'a>(pub &'a Path);

impl RunDir<'_> {
    /// The run's configuration, `config.json`; its presence makes a folder a run.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }

    /// The metrics log, `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.jsonl")
    }

    /// The checkpoint training resumes from and evaluation reads, `checkpoints/last.safetensors`.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoints").join("last.safetensors")
    }

    /// The folder of stored results, `results/`.
    pub fn results(&self) -> PathBuf {
        self.0.join("results")
    }

    /// A stored result, `results/<kind>_<name>.json` (kind: `noise`, `attack` or `budget`).
    pub fn result(&self, kind: &str, name: &str) -> PathBuf {
        self.results().join(format!("{kind}_{name}.json"))
    }

    /// Whether the folder holds a run (a configuration).
    pub fn is_run(&self) -> bool {
        self.config().is_file()
    }
}
