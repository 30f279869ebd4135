//! The regularised classifier's training loop (SPEC 7, Eq. 7): cross-entropy
//! on a classification batch plus `a` times the similarity loss on a batch of
//! the target's images, one run folder per run, resumable after a kill.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarMap};

use crate::error::{Error, Result};
use crate::nn::adam::Adam;
use crate::nn::resnet::ResNet;
use crate::nn::seeded_init::seeded_var_builder;
use crate::nn::sgd::Sgd;
use crate::progress::Progress;
use crate::runs::config::{Optimizer, RunConfig};
use crate::runs::metrics::{MetricEvent, MetricsLog};
use crate::runs::store::{RunInfo, RunStatus};
use crate::train::checkpoint;
use crate::train::classifier_data::{
    augmentation_rng, epoch_batches, image_batch, prepare, similarity_batch, similarity_rng,
    PreparedSet,
};
use crate::train::similarity_loss::similarity_loss;
use crate::train::targets::load_sim_target;

/// Name of the trained layer-mixing logits theta (Eq. 10) among the variables.
pub const THETA: &str = "similarity.theta";

/// The optimiser chosen by the run.
enum Optim {
    Sgd(Sgd),
    Adam(Adam),
}

impl Optim {
    fn set_lr(&mut self, lr: f64) {
        match self {
            Optim::Sgd(o) => o.lr = lr,
            Optim::Adam(o) => o.lr = lr,
        }
    }

    fn apply(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        match self {
            Optim::Sgd(o) => o.apply(grads),
            Optim::Adam(o) => o.apply(grads),
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match self {
            Optim::Sgd(o) => o.state(),
            Optim::Adam(o) => o.state(),
        }
    }

    fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) {
        match self {
            Optim::Sgd(o) => o.load_state(tensors),
            Optim::Adam(o) => o.load_state(tensors, step),
        }
    }
}

/// A trained (or training) network with the normalisation of its inputs.
pub struct Classifier {
    /// The network.
    pub net: ResNet,
    /// Pixel mean of the training images.
    pub mean: f32,
    /// Pixel standard deviation of the training images.
    pub std: f32,
}

impl Classifier {
    /// Class scores (B, classes) of (B, 1, H, W) images on [0, 1] (normalised here, as in
    /// training), in evaluation mode.
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        let x = ((images - self.mean as f64)? / self.std as f64)?;
        self.net
            .forward(&x, false, true)?
            .logits
            .ok_or_else(|| Error::Config("the network returned no class scores".into()))
    }

    /// The predicted class of each image on [0, 1].
    pub fn predict(&self, images: &Tensor) -> Result<Vec<u32>> {
        Ok(self.logits(images)?.argmax(1)?.to_vec1::<u32>()?)
    }
}

/// Builds the run's network (seeded initial weights) and theta.
fn build(config: &RunConfig, classes: usize, device: &Device) -> Result<(ResNet, VarMap, Var)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, config.seed, device);
    let network = config.network(classes);
    let net = ResNet::new(&network, vb.clone())?;
    vb.get_with_hints(network.taps.len(), THETA, Init::Const(0.0))?;
    let theta = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("model variables are locked by a failed job".into()))?
        .get(THETA)
        .cloned()
        .ok_or_else(|| Error::Config("theta was not created".into()))?;
    Ok((net, varmap, theta))
}

/// The checkpoint of a run folder.
pub fn checkpoint_path(dir: &Path) -> std::path::PathBuf {
    dir.join("checkpoints").join("last.safetensors")
}

/// Loads the network of a run folder from its last checkpoint, frozen: its weights are plain
/// tensors, so gradients flow to the images only (what evaluation and attacks need).
pub fn load_classifier(dir: &Path, device: &Device) -> Result<Classifier> {
    let config = RunConfig::load(dir)?;
    let path = checkpoint_path(dir);
    let tensors = checkpoint::load(&path, device)?;
    let classes = tensors
        .get("fc.bias")
        .ok_or_else(|| {
            Error::file(
                path.display(),
                "checkpoint of another architecture: no fc.bias",
            )
        })?
        .dim(0)?;
    let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
    let net = ResNet::new(&config.network(classes), vb).map_err(|e| {
        Error::file(
            path.display(),
            format!(
                "checkpoint of another architecture than {}: {e}",
                dir.join("config.json").display()
            ),
        )
    })?;
    let scalar = |k: &str| -> Result<f32> {
        Ok(tensors
            .get(k)
            .ok_or_else(|| Error::file(path.display(), format!("checkpoint without {k}")))?
            .to_scalar::<f32>()?)
    };
    Ok(Classifier {
        net,
        mean: scalar("data.mean")?,
        std: scalar("data.std")?,
    })
}

/// Fraction of the images of `tier` the network classifies correctly (evaluation mode).
pub fn accuracy(
    net: &ResNet,
    set: &PreparedSet,
    tier: &crate::data::LabelledImages,
    device: &Device,
) -> Result<f64> {
    let mut correct = 0usize;
    let indices: Vec<usize> = (0..tier.len()).collect();
    for chunk in indices.chunks(200) {
        let (x, y) = image_batch(set, tier, chunk, None, device)?;
        let logits = net
            .forward(&x, false, true)?
            .logits
            .ok_or_else(|| Error::Config("no logits".into()))?;
        correct += count_correct(&logits, &y)?;
    }
    Ok(correct as f64 / tier.len().max(1) as f64)
}

/// How many rows of `logits` have their maximum at the label.
fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let predicted = logits.argmax(1)?;
    Ok(predicted
        .eq(labels)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()? as usize)
}

/// Reads an integer bookkeeping tensor of a checkpoint.
fn counter(tensors: &HashMap<String, Tensor>, key: &str, path: &Path) -> Result<u64> {
    let t = tensors
        .get(key)
        .ok_or_else(|| Error::file(path.display(), format!("checkpoint without {key}")))?;
    Ok(t.to_dtype(DType::I64)?.to_scalar::<i64>()?.max(0) as u64)
}

/// Trains the run in `dir` (created, or resumed from its last checkpoint when it holds the same
/// configuration) and returns it. A NaN loss stops the run with the reason in its metrics.
pub fn train_run(
    dir: &Path,
    config: &RunConfig,
    device: &Device,
    progress: &dyn Progress,
) -> Result<RunInfo> {
    config.validate()?;
    let mut config = config.clone();
    config.version = env!("CARGO_PKG_VERSION").to_string();
    if dir.join("config.json").is_file() {
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
    let metrics_path = dir.join("metrics.jsonl");
    let (net, varmap, theta) = build(&config, data.classes.len(), device)?;
    let named = crate::nn::named_vars(&varmap);
    let no_decay = vec![THETA.to_string()];
    let mut optim = match config.optimizer {
        Optimizer::Sgd => Optim::Sgd(Sgd::new(
            named,
            config.lr,
            config.momentum,
            config.weight_decay,
            no_decay,
        )),
        Optimizer::Adamw => Optim::Adam(
            Adam::new(named, config.lr)?.with_weight_decay(config.weight_decay, no_decay),
        ),
    };

    // Resume: weights, optimiser state and counters from the checkpoint; metrics written after
    // it are dropped, since the resumed run writes them again.
    let ckpt = checkpoint_path(dir);
    let (mut first_epoch, mut step, mut lines) = (0usize, 0u64, 0usize);
    if ckpt.is_file() {
        let tensors = checkpoint::load(&ckpt, device)?;
        checkpoint::restore(&varmap, &tensors, &ckpt)?;
        first_epoch = counter(&tensors, "run.epochs_done", &ckpt)? as usize;
        step = counter(&tensors, "run.step", &ckpt)?;
        lines = counter(&tensors, "run.metrics_lines", &ckpt)? as usize;
        optim.load_state(&tensors, step);
    }
    let mut log = MetricsLog::resume(&metrics_path, lines)?;
    progress.advance(1);

    let strength = config.strength;
    let mut last_test = 0.0;
    for epoch in first_epoch..config.epochs {
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
        progress.stage(
            &format!("epoch {}/{}", epoch + 1, config.epochs),
            batches.len() as u64,
        );
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for indices in &batches {
            progress.check()?;
            let (x, y) = image_batch(&data, &data.train, indices, Some(&mut aug), device)?;
            let logits = net
                .forward(&x, true, true)?
                .logits
                .ok_or_else(|| Error::Config("no logits".into()))?;
            let task = candle_nn::loss::cross_entropy(&logits, &y)?;
            let (total, sim_value, gamma) = match &target {
                Some(t) => {
                    let (sx, st) = similarity_batch(&data, t, config.batch, &mut sim_rng, device)?;
                    let taps = net.forward(&sx, true, false)?.taps;
                    let sim = similarity_loss(&taps, theta.as_tensor(), &st)?;
                    let value = sim.loss.to_scalar::<f32>()? as f64;
                    ((&task + (sim.loss * strength)?)?, value, sim.gamma)
                }
                None => (
                    task.clone(),
                    0.0,
                    candle_nn::ops::softmax(theta.as_tensor(), 0)?,
                ),
            };
            let task_value = task.to_scalar::<f32>()? as f64;
            step += 1;
            if !task_value.is_finite() || !sim_value.is_finite() {
                let reason = format!(
                    "loss is not finite at step {step} (task {task_value}, similarity {sim_value})"
                );
                log.log(&MetricEvent::Stopped {
                    step,
                    reason: reason.clone(),
                })?;
                return Err(Error::analysis(dir.display(), reason));
            }
            let grads = total.backward()?;
            optim.apply(&grads)?;
            loss_sum += task_value;
            correct += count_correct(&logits, &y)?;
            seen += indices.len();
            if step % config.log_every as u64 == 0 {
                log.log(&MetricEvent::Step {
                    epoch,
                    step,
                    task_loss: task_value,
                    sim_loss: sim_value,
                    lr,
                    gamma: gamma.to_vec1::<f32>()?.iter().map(|&g| g as f64).collect(),
                })?;
            }
            progress.advance(1);
        }
        last_test = accuracy(&net, &data, &data.test, device)?;
        log.log(&MetricEvent::Epoch {
            epoch,
            step,
            task_loss: loss_sum / batches.len() as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: last_test,
        })?;
        let mut extra = optim.state();
        let int = |v: u64| Tensor::new(v as i64, &Device::Cpu);
        extra.push(("run.epochs_done".into(), int(epoch as u64 + 1)?));
        extra.push(("run.step".into(), int(step)?));
        extra.push(("run.metrics_lines".into(), int(log.lines as u64)?));
        extra.push(("data.mean".into(), Tensor::new(data.mean, device)?));
        extra.push(("data.std".into(), Tensor::new(data.std, device)?));
        checkpoint::save(&ckpt, &varmap, extra)?;
    }
    log.log(&MetricEvent::Finished {
        step,
        test_accuracy: last_test,
    })?;
    RunInfo::read(dir)
}
