//! A fitted predictor as the store keeps it (the README's "Bringing your own data" describes
//! it): its folder's `meta.json` (what it was fitted to and how), `best.safetensors`,
//! `metrics.jsonl`, `snr_weights.npy`, read back into a model that predicts responses to new
//! images.

use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::data::Scan;
use crate::error::{Error, Result};
use crate::nn::checkpoint;
use crate::nn::models::predictor::{ModelShape, Predictor, PredictorConfig};
use crate::nn::models::predictor_data::{batch, Normalization};
use crate::nn::seeded_init::seeded_var_builder;
use crate::runs::metrics;
use crate::runs::run_dir::PredictorDir;

/// How to fit: neuralpredictors' standard trainer, with the batch, learning rate and penalties
/// that fitted the 500-image sample scans best (smaller batches, a higher rate, lighter penalties).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct FitConfig {
    /// Most epochs to run.
    #[arg(long, default_value_t = 60)]
    pub max_epochs: usize,
    /// Trials per batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// Epochs without a better validation correlation before the learning rate decays.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Factor of each decay.
    #[arg(long, default_value_t = 0.3)]
    pub lr_decay: f64,
    /// Decays before the fit stops.
    #[arg(long, default_value_t = 2)]
    pub lr_decay_steps: usize,
    /// Weight of the readout sparsity penalty (mean |feature weight|).
    #[arg(long, default_value_t = 0.001)]
    pub gamma_readout: f64,
    /// Weight of the core smoothness penalty (Laplacian of the first layer's kernels).
    #[arg(long, default_value_t = 0.01)]
    pub gamma_input: f64,
    /// Explainable-variance fraction below which a neuron is flagged.
    #[arg(long, default_value_t = 0.05)]
    pub flag_below: f32,
    /// Seed of the initial weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            max_epochs: 60,
            batch_size: 8,
            lr: 1e-2,
            patience: 5,
            lr_decay: 0.3,
            lr_decay_steps: 2,
            gamma_readout: 0.001,
            gamma_input: 0.01,
            flag_below: 0.05,
            seed: 0,
        }
    }
}

/// What a predictor folder says about its model (`meta.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorMeta {
    /// The scan it was fitted to.
    pub scan: String,
    /// Where that scan was read from (absolute when it could be resolved; a relative path is
    /// relative to the predictor's folder, so that a predictor shipped beside its scan moves with it).
    pub scan_path: PathBuf,
    /// The scan's neurons, in the model's output order.
    pub unit_ids: Vec<i64>,
    /// The scan's [`Scan::fingerprint`] (None in folders written before neureg recorded it).
    #[serde(default)]
    pub scan_fingerprint: Option<u32>,
    /// Architecture.
    pub config: PredictorConfig,
    /// Fit settings.
    pub fit: FitConfig,
    /// Input and output sizes.
    pub shape: ModelShape,
    /// Input normalisation.
    pub normalization: Normalization,
    /// neureg's version.
    pub version: String,
}

/// One epoch's figures (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss (Poisson plus penalties).
    pub train_loss: f64,
    /// Mean validation correlation over neurons.
    pub validation_correlation: f32,
    /// Learning rate used.
    pub lr: f64,
}

/// Writes `value` as pretty JSON, atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::file(path.display(), e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Reads JSON, naming the file when it is missing or broken.
pub(crate) fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path.display(), format!("unreadable: {e}")))
}

/// The epochs of a fit so far, from its `metrics.jsonl` (none before the first epoch ends; a
/// broken line is an error naming the file).
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>> {
    metrics::read(&PredictorDir(dir).metrics())
}

/// Predictions (trials x N, response scale) for trials of `scan`, with their own behaviour.
pub fn predict_trials(
    model: &Predictor,
    scan: &Scan,
    norm: &Normalization,
    trials: &[usize],
    device: &Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(trials.len() * scan.n_neurons());
    let scale = norm.response_scale(device)?;
    for chunk in trials.chunks(128) {
        let b = batch(scan, norm, chunk, device)?;
        let p = model.forward(&b.images, b.behavior.as_ref(), b.pupil.as_ref(), false)?;
        out.extend(p.broadcast_mul(&scale)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// A fitted predictor read back from its folder (best weights).
pub struct LoadedPredictor {
    /// Its folder.
    pub dir: PathBuf,
    /// What it was fitted to and how.
    pub meta: PredictorMeta,
    /// The model with the best weights.
    pub model: Predictor,
    _varmap: VarMap,
}

/// Reads the predictor in `dir` (`meta.json`, `best.safetensors`).
pub fn load_predictor(dir: &Path, device: &Device) -> Result<LoadedPredictor> {
    let meta_path = PredictorDir(dir).meta();
    if !meta_path.is_file() {
        return Err(Error::file(
            dir.display(),
            "not a predictor folder: meta.json is missing",
        ));
    }
    let mut meta: PredictorMeta = read_json(&meta_path)?;
    if meta.scan_path.is_relative() {
        meta.scan_path = dir.join(&meta.scan_path);
    }
    let varmap = VarMap::new();
    let model = Predictor::new(
        &meta.config,
        meta.shape,
        seeded_var_builder(&varmap, 0, device),
    )?;
    let best = PredictorDir(dir).best();
    checkpoint::restore(&varmap, &checkpoint::load(&best, device)?, &best)?;
    Ok(LoadedPredictor {
        dir: dir.to_path_buf(),
        meta,
        model,
        _varmap: varmap,
    })
}

impl LoadedPredictor {
    /// Checks that `scan` is the recording this predictor was fitted to: its neurons, responses and
    /// image size.
    pub fn check_scan(&self, scan: &Scan) -> Result<()> {
        if scan.unit_ids.len() != self.meta.shape.neurons {
            return Err(Error::analysis(
                &scan.name,
                format!(
                    "has {} neurons but the predictor in {} was fitted to {} with {}",
                    scan.n_neurons(),
                    self.dir.display(),
                    self.meta.scan,
                    self.meta.shape.neurons
                ),
            ));
        }
        if self
            .meta
            .scan_fingerprint
            .is_some_and(|f| f != scan.fingerprint())
        {
            return Err(Error::analysis(
                &scan.name,
                format!(
                    "is another recording than the one the predictor in {} was fitted to (its \
                     responses differ from those of {} at {}); load that one",
                    self.dir.display(),
                    self.meta.scan,
                    self.meta.scan_path.display()
                ),
            ));
        }
        self.check_images(scan.image_shape)
    }

    /// Checks that images of size `shape` fit the model.
    pub fn check_images(&self, (h, w): (usize, usize)) -> Result<()> {
        if (h, w) != (self.meta.shape.height, self.meta.shape.width) {
            return Err(Error::Config(format!(
                "the predictor in {} takes {} x {} images, not {h} x {w}",
                self.dir.display(),
                self.meta.shape.height,
                self.meta.shape.width
            )));
        }
        Ok(())
    }

    /// Predicted responses (images x N, response scale) to raw images, at the training mean behaviour.
    pub fn predict_images(
        &self,
        images: &[&[f32]],
        shape: (usize, usize),
        device: &Device,
    ) -> Result<Vec<f32>> {
        self.check_images(shape)?;
        let norm = &self.meta.normalization;
        let scale = norm.response_scale(device)?;
        let mut out = Vec::with_capacity(images.len() * self.meta.shape.neurons);
        for chunk in images.chunks(128) {
            let x = norm.images(chunk, shape, device)?;
            let (behavior, pupil) = norm.mean_inputs(chunk.len(), device)?;
            let p = self
                .model
                .forward(&x, behavior.as_ref(), pupil.as_ref(), false)?;
            out.extend(p.broadcast_mul(&scale)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// The SNR weights (Eq. 1) of the scan it was fitted to (`snr_weights.npy`).
    pub fn snr_weights(&self) -> Result<Vec<f32>> {
        let path = PredictorDir(&self.dir).snr_weights();
        let w = crate::data::npy::read_f32(
            &crate::data::npy::read_file(&path)?,
            &path.display().to_string(),
        )?;
        if w.data.len() != self.meta.shape.neurons {
            return Err(Error::file(
                path.display(),
                format!(
                    "has {} weights for {} neurons",
                    w.data.len(),
                    self.meta.shape.neurons
                ),
            ));
        }
        Ok(w.data)
    }
}
