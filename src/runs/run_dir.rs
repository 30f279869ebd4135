//! The layouts of the store's folders, written down here and nowhere else: a classifier run's
//! (configuration, metrics, checkpoint, stored results) and a fitted predictor's.

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

/// A fitted predictor's folder, naming the files it holds.
#[derive(Debug, Clone, Copy)]
pub struct PredictorDir<'a>(pub &'a Path);

impl PredictorDir<'_> {
    /// What it was fitted to and how, `meta.json`; its presence makes a folder a predictor.
    pub fn meta(&self) -> PathBuf {
        self.0.join("meta.json")
    }

    /// Where an interrupted fit resumes, `state.json`.
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }

    /// The metrics of each epoch, `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.jsonl")
    }

    /// The weights after the last epoch, `last.safetensors`.
    pub fn last(&self) -> PathBuf {
        self.0.join("last.safetensors")
    }

    /// The weights of the best validation epoch, `best.safetensors`.
    pub fn best(&self) -> PathBuf {
        self.0.join("best.safetensors")
    }

    /// The per-neuron test quality written when the fit ends, `quality.json`.
    pub fn quality(&self) -> PathBuf {
        self.0.join("quality.json")
    }

    /// The SNR weights (Eq. 1) of the scan it was fitted to, `snr_weights.npy`.
    pub fn snr_weights(&self) -> PathBuf {
        self.0.join("snr_weights.npy")
    }

    /// Whether the folder holds a predictor.
    pub fn is_predictor(&self) -> bool {
        self.meta().is_file()
    }
}
