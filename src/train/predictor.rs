//! Fitting the predictive model to one scan (docs/method.md section 6): Poisson loss, Adam,
//! readout sparsity and core smoothness penalties, early stopping on the
//! validation correlation with learning-rate decay on plateaus. Every epoch
//! ends with an atomic checkpoint (weights, optimiser moments, counters), so a
//! killed fit resumes where it stopped; the best weights are kept apart.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::data::{Scan, Tier};
use crate::error::{Error, Result};
use crate::nn::checkpoint;
use crate::nn::models::predictor::{ModelShape, Predictor, PredictorConfig};
use crate::nn::models::predictor_data::{batch, trials_of, Normalization};
use crate::nn::optim::adam::Adam;
use crate::nn::seeded_init::seeded_var_builder;
use crate::progress::Progress;
use crate::runs::metrics;
use crate::runs::predictor::{
    load_predictor, predict_trials, read_json, write_json, EpochMetrics, FitConfig, PredictorMeta,
};
use crate::runs::run_dir::PredictorDir;
use crate::similarity::compare::pearson;
use crate::similarity::quality::{test_quality, NeuronQuality};

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

    let files = PredictorDir(out);
    let (meta_path, state_path, metrics_path) = (files.meta(), files.state(), files.metrics());
    let (last_path, best_path) = (files.last(), files.best());
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
                return Err(Error::Diverged {
                    run: scan.name.clone(),
                    reason: format!(
                        "the training loss became {value} in epoch {epoch}; try a lower learning rate"
                    ),
                });
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
    let quality = test_quality(&loaded, scan, fit.flag_below, device)?;
    write_json(&files.quality(), &quality)?;
    let w = crate::similarity::weights::snr_weights(scan, &scan.oracle_trials())?;
    write_atomic(
        &files.snr_weights(),
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
