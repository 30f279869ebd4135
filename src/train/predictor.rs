//! Fitting the predictive model to one scan (SPEC 6): Poisson loss, Adam,
//! readout sparsity and core smoothness penalties, early stopping on the
//! validation correlation with learning-rate decay on plateaus. Every epoch
//! ends with an atomic checkpoint (weights, optimiser moments, counters), so a
//! killed fit resumes where it stopped; the best weights are kept apart.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::data::{Scan, Tier};
use crate::error::{Error, Result};
use crate::nn::adam::Adam;
use crate::nn::predictor::{ModelShape, Predictor, PredictorConfig};
use crate::nn::seeded_init::seeded_var_builder;
use crate::progress::Progress;
use crate::runs::metrics;
use crate::similarity::compare::pearson;
use crate::similarity::quality::{neuron_quality, NeuronQuality};
use crate::train::checkpoint;
use crate::train::predictor_data::{batch, trials_of, Normalization};

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

/// Progress of a fit (`state.json`), rewritten after every epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FitState {
    epochs_done: usize,
    best_correlation: f32,
    best_epoch: usize,
    bad_epochs: usize,
    decays: usize,
    lr: f64,
    adam_step: u64,
    finished: bool,
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

/// The outcome of a fit.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Its validation correlation.
    pub best_correlation: f32,
    /// Quality of the kept weights on the test tier.
    pub quality: NeuronQuality,
}

const POISSON_EPS: f64 = 1e-8;

/// The model shape for `scan`.
pub fn shape_of(scan: &Scan) -> ModelShape {
    ModelShape {
        neurons: scan.n_neurons(),
        height: scan.image_shape.0,
        width: scan.image_shape.1,
        behavior: scan.behavior.is_some(),
        pupil: scan.pupil_center.is_some(),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::file(path.display(), e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path.display(), format!("unreadable: {e}")))
}

/// Fits a predictor to `scan` in the folder `out`, resuming a fit left there.
/// `on_epoch` sees each epoch's figures as they come.
pub fn fit_predictor(
    scan: &Scan,
    config: &PredictorConfig,
    fit: &FitConfig,
    out: &Path,
    device: &Device,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<FitReport> {
    let train = trials_of(scan, Tier::Train);
    let validation = trials_of(scan, Tier::Validation);
    if validation.is_empty() {
        return Err(Error::analysis(
            &scan.name,
            "the predictor needs validation trials (tier validation) for early stopping",
        ));
    }
    let meta = PredictorMeta {
        scan: scan.name.clone(),
        // Absolute, so that `neureg target` and the window find the scan from any working folder.
        scan_path: std::fs::canonicalize(&scan.source).unwrap_or_else(|_| scan.source.clone()),
        unit_ids: scan.unit_ids.clone(),
        scan_fingerprint: Some(scan.fingerprint()),
        config: config.clone(),
        fit: fit.clone(),
        shape: shape_of(scan),
        normalization: Normalization::from_scan(scan)?,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, fit.seed, device);
    let model = Predictor::new(config, meta.shape, vb)?;
    let mut adam = Adam::new(crate::nn::named_vars(&varmap), fit.lr)?;

    let (meta_path, state_path, metrics_path) = (
        out.join("meta.json"),
        out.join("state.json"),
        out.join("metrics.jsonl"),
    );
    let (last_path, best_path) = (out.join("last.safetensors"), out.join("best.safetensors"));
    let mut state = FitState {
        lr: fit.lr,
        best_correlation: f32::NEG_INFINITY,
        ..Default::default()
    };
    if state_path.is_file() {
        let old: PredictorMeta = read_json(&meta_path)?;
        if old.scan != meta.scan
            || old.unit_ids != meta.unit_ids
            || old
                .scan_fingerprint
                .is_some_and(|f| meta.scan_fingerprint != Some(f))
            || old.config != meta.config
            || old.fit != meta.fit
        {
            return Err(Error::file(
                out.display(),
                "holds a fit of another scan or with other settings; choose another folder to start a new one",
            ));
        }
        state = read_json(&state_path)?;
        let tensors = checkpoint::load(&last_path, device)?;
        checkpoint::restore(&varmap, &tensors, &last_path)?;
        adam.load_state(&tensors, state.adam_step);
        adam.lr = state.lr;
        keep_metrics_up_to(&metrics_path, state.epochs_done)?;
    } else {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        write_json(&meta_path, &meta)?;
        let _ = std::fs::remove_file(&metrics_path);
    }

    let norm = &meta.normalization;
    progress.stage("fitting predictor", fit.max_epochs as u64);
    progress.advance(state.epochs_done as u64);
    let mut cancelled = false;
    while !state.finished && state.epochs_done < fit.max_epochs {
        let epoch = state.epochs_done + 1;
        model.reseed_noise(fit.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let mut order = train.clone();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            fit.seed.wrapping_add(epoch as u64),
        ));
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(fit.batch_size.max(2)) {
            if progress.is_cancelled() {
                cancelled = true;
                break;
            }
            let b = batch(scan, norm, chunk, device)?;
            let pred = model.forward(&b.images, b.behavior.as_ref(), b.pupil.as_ref(), true)?;
            let loss = training_loss(&model, &pred, &b.responses, fit)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(Error::analysis(&scan.name, format!("the training loss became {value} in epoch {epoch}; try a lower learning rate")));
            }
            adam.backward_step(&loss)?;
            total += value;
            batches += 1;
        }
        if cancelled {
            break;
        }
        let corr = mean_correlation(&model, scan, norm, &validation, device)?;
        let metrics = EpochMetrics {
            epoch,
            train_loss: total / batches.max(1) as f64,
            validation_correlation: corr,
            lr: adam.lr,
        };
        metrics::append(&metrics_path, &metrics)?;
        on_epoch(&metrics);
        state.epochs_done = epoch;
        if corr > state.best_correlation + 1e-6 {
            state.best_correlation = corr;
            state.best_epoch = epoch;
            state.bad_epochs = 0;
            checkpoint::save(&best_path, &varmap, Vec::new())?;
        } else {
            state.bad_epochs += 1;
            if state.bad_epochs >= fit.patience {
                state.bad_epochs = 0;
                state.decays += 1;
                if state.decays > fit.lr_decay_steps {
                    state.finished = true;
                } else {
                    adam.lr *= fit.lr_decay;
                }
            }
        }
        state.lr = adam.lr;
        state.adam_step = adam.step;
        checkpoint::save(&last_path, &varmap, adam.state())?;
        write_json(&state_path, &state)?;
        progress.advance(1);
    }
    if !best_path.is_file() {
        return Err(Error::Cancelled);
    }
    let loaded = load_predictor(out, device)?;
    let quality = loaded.test_quality(scan, fit.flag_below, device)?;
    write_json(&out.join("quality.json"), &quality)?;
    let w = crate::similarity::weights::snr_weights(scan, &scan.oracle_trials())?;
    write_atomic(
        &out.join("snr_weights.npy"),
        &crate::data::npy::encode(&[w.weights.len()], &w.weights),
    )?;
    Ok(FitReport {
        best_epoch: state.best_epoch,
        best_correlation: state.best_correlation,
        quality,
    })
}

/// The loss a fit minimises: the Poisson loss of the predictions `pred` against `responses`, plus the
/// readout sparsity and core smoothness penalties weighted as `fit` says.
pub fn training_loss(
    model: &Predictor,
    pred: &Tensor,
    responses: &Tensor,
    fit: &FitConfig,
) -> Result<Tensor> {
    let poisson = (pred - (responses * (pred + POISSON_EPS)?.log()?)?)?.mean_all()?;
    Ok(((poisson + (model.readout_l1()? * fit.gamma_readout)?)?
        + (model.smoothness()? * fit.gamma_input)?)?)
}

/// Drops metrics lines of epochs after `epochs` (written after the last checkpoint of a killed
/// fit; the lines are in epoch order).
fn keep_metrics_up_to(path: &Path, epochs: usize) -> Result<()> {
    let kept = metrics::read::<EpochMetrics>(path)?
        .iter()
        .take_while(|m| m.epoch <= epochs)
        .count();
    metrics::truncate(path, kept)
}

/// The epochs of a fit so far, from its `metrics.jsonl` (none before the first epoch ends; a
/// broken line is an error naming the file).
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>> {
    metrics::read(&dir.join("metrics.jsonl"))
}

fn mean_correlation(
    model: &Predictor,
    scan: &Scan,
    norm: &Normalization,
    trials: &[usize],
    device: &Device,
) -> Result<f32> {
    let pred = predict_trials(model, scan, norm, trials, device)?;
    let n = scan.n_neurons();
    let mut sum = 0.0;
    for i in 0..n {
        let r: Vec<f32> = trials.iter().map(|&t| scan.response(t)[i]).collect();
        let p: Vec<f32> = (0..trials.len()).map(|k| pred[k * n + i]).collect();
        sum += pearson(&r, &p);
    }
    Ok((sum / n as f64) as f32)
}

/// Predictions (trials x N, response scale) for trials of `scan`, with their own behaviour.
fn predict_trials(
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
    let meta_path = dir.join("meta.json");
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
    let best = dir.join("best.safetensors");
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

    /// Quality on the test tier of `scan` (the scan it was fitted to).
    pub fn test_quality(
        &self,
        scan: &Scan,
        flag_below: f32,
        device: &Device,
    ) -> Result<NeuronQuality> {
        self.check_scan(scan)?;
        let test = trials_of(scan, Tier::Test);
        if test.is_empty() {
            return Err(Error::analysis(
                &scan.name,
                "no test trials to measure the predictor on",
            ));
        }
        let pred = predict_trials(&self.model, scan, &self.meta.normalization, &test, device)?;
        let resp: Vec<f32> = test
            .iter()
            .flat_map(|&t| scan.response(t).to_vec())
            .collect();
        let ids: Vec<i64> = test.iter().map(|&t| scan.image_ids[t]).collect();
        Ok(neuron_quality(
            &resp,
            &pred,
            &ids,
            scan.n_neurons(),
            flag_below,
        ))
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
        let path = self.dir.join("snr_weights.npy");
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

    /// The quality written at the end of the fit (`quality.json`).
    pub fn quality(&self) -> Result<NeuronQuality> {
        read_json(&self.dir.join("quality.json"))
    }
}
