//! The regularised classifier's training loop (docs/method.md section 7, Eq. 7): cross-entropy
//! on a classification batch plus `a` times the similarity loss on a batch of
//! the target's images, one run folder per run, resumable after a kill.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::checkpoint;
use crate::nn::kernels::batch_norm::BnMode;
use crate::nn::models::resnet::ResNet;
use crate::nn::optim::adam::Adam;
use crate::nn::optim::optimiser::Optimiser;
use crate::nn::optim::sgd::Sgd;
use crate::progress::Progress;
use crate::runs::classifier::THETA;
use crate::runs::config::{BnStatistics, Optimizer, RunConfig};
use crate::runs::lock::FolderLock;
use crate::runs::metrics::{MetricEvent, MetricsLog};
use crate::runs::run_dir::RunDir;
use crate::runs::store::{RunInfo, RunStatus};
use crate::train::classifier_data::{
    augmentation_rng, epoch_batches, image_batch, precise_bn_rng, prepare, similarity_batch,
    similarity_rng, PreparedSet,
};
use crate::train::classifier_model::{accuracy, build};
use crate::train::similarity_loss::similarity_loss;
use crate::train::step_scalars::{StepScalars, StepValues};
use crate::train::targets::load_sim_target;

/// How the similarity pass treats batch norm under each rule for the running statistics.
pub fn similarity_pass_mode(rule: BnStatistics) -> BnMode {
    match rule {
        BnStatistics::Classification => BnMode::BatchOnly,
        BnStatistics::SimilarityEval => BnMode::Eval,
        BnStatistics::Mixed => BnMode::Train,
    }
}

/// Where a run stands, as its checkpoint records it: at the end of an epoch, or mid-epoch after
/// a pause (then with the epoch's partial sums and its random generators' positions).
#[derive(Debug, Default, Clone, PartialEq)]
struct Position {
    epochs_done: usize,
    step: u64,
    /// Metrics lines written up to this point.
    lines: usize,
    /// Batches of the current epoch done (0 at an epoch's end).
    batches_done: usize,
    loss_sum: f64,
    correct: u64,
    seen: u64,
    augmentation_word: u64,
    similarity_word: u64,
}

impl Position {
    /// The bookkeeping tensors of a checkpoint.
    fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let int = |v: u64| Tensor::new(v as i64, &Device::Cpu);
        Ok(vec![
            ("run.epochs_done".into(), int(self.epochs_done as u64)?),
            ("run.step".into(), int(self.step)?),
            ("run.metrics_lines".into(), int(self.lines as u64)?),
            ("run.batches_done".into(), int(self.batches_done as u64)?),
            (
                "run.epoch_loss_sum".into(),
                Tensor::new(self.loss_sum, &Device::Cpu)?,
            ),
            ("run.epoch_correct".into(), int(self.correct)?),
            ("run.epoch_seen".into(), int(self.seen)?),
            ("run.augmentation_word".into(), int(self.augmentation_word)?),
            ("run.similarity_word".into(), int(self.similarity_word)?),
        ])
    }

    /// Reads them back; checkpoints written at an epoch's end before pauses existed lack the
    /// mid-epoch ones, which are then 0.
    fn read(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<Self> {
        let int = |key: &str, required: bool| -> Result<u64> {
            match tensors.get(key) {
                Some(t) => Ok(t.to_dtype(DType::I64)?.to_scalar::<i64>()? as u64),
                None if !required => Ok(0),
                None => Err(Error::file(
                    path.display(),
                    format!("checkpoint without {key}"),
                )),
            }
        };
        let loss_sum = match tensors.get("run.epoch_loss_sum") {
            Some(t) => t.to_dtype(DType::F64)?.to_scalar::<f64>()?,
            None => 0.0,
        };
        Ok(Position {
            epochs_done: int("run.epochs_done", true)? as usize,
            step: int("run.step", true)?,
            lines: int("run.metrics_lines", true)? as usize,
            batches_done: int("run.batches_done", false)? as usize,
            loss_sum,
            correct: int("run.epoch_correct", false)?,
            seen: int("run.epoch_seen", false)?,
            augmentation_word: int("run.augmentation_word", false)?,
            similarity_word: int("run.similarity_word", false)?,
        })
    }
}

/// Precise batch norm (Wu and Johnson 2021): the running statistics recomputed as the exact mean
/// and variance of `config.precise_bn_batches` augmented training batches passed in training
/// mode, no weight changed, so that evaluation does not normalise by statistics that trail the
/// weights. Seeded by the run's seed and `epoch`, so a resumed run recomputes what an unbroken
/// one did.
pub fn precise_batch_norm(
    net: &ResNet,
    data: &PreparedSet,
    config: &RunConfig,
    epoch: usize,
    device: &Device,
) -> Result<()> {
    if config.precise_bn_batches == 0 {
        return Ok(());
    }
    let norms = net.batch_norms();
    for bn in &norms {
        bn.begin_precise()?;
    }
    let mut rng = precise_bn_rng(config.seed, epoch);
    let n = data.train.len();
    for _ in 0..config.precise_bn_batches {
        let indices = rand::seq::index::sample(&mut rng, n, config.batch.min(n)).into_vec();
        let (x, _) = image_batch(data, &data.train, &indices, Some(&mut rng), device)?;
        net.logits(&x.detach(), BnMode::Collect)?;
    }
    for bn in &norms {
        bn.end_precise()?;
    }
    Ok(())
}

/// Reads the kept steps' scalars into the epoch's sums; a non-finite loss stops the run with the
/// reason in its metrics. Returns the last step's values.
fn settle(
    kept: &mut StepScalars,
    at: &mut Position,
    log: &mut MetricsLog,
    dir: &Path,
) -> Result<Option<StepValues>> {
    let values = kept.drain()?;
    for v in &values {
        if !v.task.is_finite() || !v.similarity.is_finite() {
            let reason = format!(
                "loss is not finite at step {} (task {}, similarity {})",
                v.step, v.task, v.similarity
            );
            log.log(&MetricEvent::Stopped {
                step: v.step,
                reason: reason.clone(),
            })?;
            return Err(Error::Diverged {
                run: dir.display().to_string(),
                reason,
            });
        }
        at.loss_sum += v.task;
        at.correct += v.correct;
    }
    Ok(values.last().copied())
}

/// Trains the run in `dir` (created, or resumed from its last checkpoint when it holds the same
/// configuration) and returns it, holding the folder's lock meanwhile. A NaN loss stops the run
/// with the reason in its metrics; a pause request saves a mid-epoch checkpoint and returns
/// `Err(Paused)`.
pub fn train_run(
    dir: &Path,
    config: &RunConfig,
    device: &Device,
    progress: &dyn Progress,
) -> Result<RunInfo> {
    let existed = dir.exists();
    let lock = FolderLock::acquire(dir)?;
    let result = train_locked(dir, config, device, progress, &lock);
    drop(lock);
    if result.is_err() && !existed {
        // Bad input leaves no run folder behind (only an empty one is removed).
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// [`train_run`] in a folder whose lock the caller holds.
pub fn train_locked(
    dir: &Path,
    config: &RunConfig,
    device: &Device,
    progress: &dyn Progress,
    lock: &FolderLock,
) -> Result<RunInfo> {
    lock.check(dir)?;
    config.validate()?;
    let mut config = config.clone().with_absolute_inputs(None);
    config.version = env!("CARGO_PKG_VERSION").to_string();
    if RunDir(dir).is_run() {
        let mut existing = RunConfig::load(dir)?;
        existing.version = config.version.clone();
        if existing != config {
            return Err(Error::Config(format!(
                "{} holds a run with another configuration; choose a new folder",
                dir.display()
            )));
        }
        if RunInfo::read(dir)?.status() != RunStatus::Incomplete {
            return RunInfo::read(dir);
        }
    }
    // Data and target first, so that bad input leaves no run folder behind.
    progress.stage("loading data", 1);
    let data = prepare(&config)?;
    let target = load_sim_target(&config, device)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    config.save(dir)?;
    let metrics_path = RunDir(dir).metrics();
    let (net, varmap, theta) = build(&config, data.classes.len(), device)?;
    let named = crate::nn::named_vars(&varmap);
    let no_decay = vec![THETA.to_string()];
    let mut optim: Box<dyn Optimiser> = match config.optimizer {
        Optimizer::Sgd => Box::new(Sgd::new(
            named,
            config.lr,
            config.momentum,
            config.weight_decay,
            no_decay,
        )),
        Optimizer::Adamw => {
            Box::new(Adam::new(named, config.lr)?.with_weight_decay(config.weight_decay, no_decay))
        }
    };

    // Resume: weights, optimiser state and counters from the checkpoint; metrics written after
    // it are dropped, since the resumed run writes them again.
    let ckpt = RunDir(dir).checkpoint();
    let mut at = Position::default();
    if ckpt.is_file() {
        let tensors = checkpoint::load(&ckpt, device)?;
        checkpoint::restore(&varmap, &tensors, &ckpt)?;
        at = Position::read(&tensors, &ckpt)?;
        optim.load_state(&tensors, at.step);
    }
    let mut log = MetricsLog::resume(&metrics_path, at.lines)?;
    progress.advance(1);
    let save = |optim: &dyn Optimiser, at: &Position| -> Result<()> {
        let mut extra = optim.state();
        extra.extend(at.tensors()?);
        extra.push(("data.mean".into(), Tensor::new(data.mean, device)?));
        extra.push(("data.std".into(), Tensor::new(data.std, device)?));
        checkpoint::save(&ckpt, &varmap, extra)
    };

    let strength = config.strength;
    let similarity_mode = similarity_pass_mode(config.bn_statistics);
    let mut last_test = 0.0;
    let mut kept = StepScalars::default();
    for epoch in at.epochs_done..config.epochs {
        let lr = config.schedule.lr(config.lr, epoch, config.epochs);
        optim.set_lr(lr);
        let batches = epoch_batches(data.train.len(), config.batch, config.seed, epoch);
        if batches.is_empty() {
            return Err(Error::Config(format!(
                "{} training images are fewer than a batch of {}",
                data.train.len(),
                config.batch
            )));
        }
        let mut aug = augmentation_rng(config.seed, epoch);
        let mut sim_rng = similarity_rng(config.seed, epoch);
        if at.batches_done > 0 {
            aug.set_word_pos(at.augmentation_word as u128);
            sim_rng.set_word_pos(at.similarity_word as u128);
        }
        progress.stage(
            &format!("epoch {}/{}", epoch + 1, config.epochs),
            batches.len() as u64,
        );
        progress.advance(at.batches_done as u64);
        for indices in &batches[at.batches_done.min(batches.len())..] {
            if progress.pause_requested() {
                settle(&mut kept, &mut at, &mut log, dir)?;
                precise_batch_norm(&net, &data, &config, epoch, device)?;
                at.lines = log.lines;
                at.augmentation_word = aug.get_word_pos() as u64;
                at.similarity_word = sim_rng.get_word_pos() as u64;
                save(optim.as_ref(), &at)?;
                return Err(Error::Paused(format!(
                    "{} saved at step {} (epoch {}, batch {} of {})",
                    dir.display(),
                    at.step,
                    epoch + 1,
                    at.batches_done,
                    batches.len()
                )));
            }
            progress.check()?;
            let (x, y) = image_batch(&data, &data.train, indices, Some(&mut aug), device)?;
            let logits = net.logits(&x, BnMode::Train)?;
            let task = candle_nn::loss::cross_entropy(&logits, &y)?;
            at.step += 1;
            let step = at.step;
            let (total, gamma) = match &target {
                Some(t) => {
                    let (sx, st) = similarity_batch(
                        &data,
                        t,
                        config.similarity_batch_size(),
                        &mut sim_rng,
                        device,
                    )?;
                    let taps = net.taps(&sx, similarity_mode)?;
                    let sim = similarity_loss(&taps, theta.as_tensor(), &st)?;
                    kept.push(step, &task, Some(&sim.loss), &logits, &y)?;
                    ((&task + (sim.loss * strength)?)?, sim.gamma)
                }
                None => {
                    kept.push(step, &task, None, &logits, &y)?;
                    (task, candle_nn::ops::softmax(theta.as_tensor(), 0)?)
                }
            };
            let grads = total.backward()?;
            optim.apply(&grads)?;
            at.seen += indices.len() as u64;
            at.batches_done += 1;
            if step % config.log_every as u64 == 0 {
                if let Some(v) = settle(&mut kept, &mut at, &mut log, dir)? {
                    log.log(&MetricEvent::Step {
                        epoch,
                        step,
                        task_loss: v.task,
                        sim_loss: v.similarity,
                        lr,
                        gamma: gamma.to_vec1::<f32>()?.iter().map(|&g| g as f64).collect(),
                    })?;
                }
            }
            progress.advance(1);
        }
        settle(&mut kept, &mut at, &mut log, dir)?;
        precise_batch_norm(&net, &data, &config, epoch, device)?;
        last_test = accuracy(&net, &data, &data.test, device)?;
        log.log(&MetricEvent::Epoch {
            epoch,
            step: at.step,
            task_loss: at.loss_sum / batches.len() as f64,
            train_accuracy: at.correct as f64 / at.seen.max(1) as f64,
            test_accuracy: last_test,
        })?;
        at = Position {
            epochs_done: epoch + 1,
            step: at.step,
            lines: log.lines,
            ..Position::default()
        };
        save(optim.as_ref(), &at)?;
    }
    log.log(&MetricEvent::Finished {
        step: at.step,
        test_accuracy: last_test,
    })?;
    RunInfo::read(dir)
}
