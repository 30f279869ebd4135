//! Noise robustness (docs/method.md section 8, the paper's Fig. 4): test accuracy on
//! `clip(x + noise, 0, 1)` over a ladder of noise levels, the same noise draws
//! for every model, and the mean and SEM over the seeds of each condition.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::data::augment::pad_to_32;
use crate::data::npy::encode;
use crate::data::{load_classification_set, LabelledImages};
use crate::error::{Error, Result};
use crate::eval::comparisons::{family, Comparison, Member};
use crate::progress::Progress;
use crate::runs::classifier::load_classifier;
use crate::runs::config::{Condition, RunConfig};
use crate::runs::run_dir::RunDir;
use crate::runs::store::run_name;
use crate::stats::MeanSem;

/// The kind of noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseKind {
    /// Gaussian, the level its standard deviation.
    Gaussian,
    /// Uniform on `[-sqrt(3) s, sqrt(3) s]`: the level is its standard deviation, as for Gaussian.
    Uniform,
    /// Salt and pepper: the level is the fraction of pixels set to 0 or 1 (half each).
    SaltAndPepper,
}

impl NoiseKind {
    /// Its name in file names and tables.
    pub fn name(self) -> &'static str {
        match self {
            NoiseKind::Gaussian => "gaussian",
            NoiseKind::Uniform => "uniform",
            NoiseKind::SaltAndPepper => "salt-and-pepper",
        }
    }
}

/// The default ladder: 0.00, 0.01, ..., 0.10.
pub fn default_levels() -> Vec<f64> {
    (0..=10).map(|k| k as f64 / 100.0).collect()
}

/// How noise robustness is measured, whatever the noise: the flags of `neureg eval-noise`, the
/// Robustness tab's settings and a plan's `noise` table (with its `kinds`). Every run is
/// evaluated on the same first test images and the same noise draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct NoiseConfig {
    /// Noise levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = default_levels())]
    pub levels: Vec<f64>,
    /// Test images (the first ones; 0: the whole test set).
    #[arg(long, default_value_t = NoiseConfig::default().samples)]
    pub samples: usize,
    /// Seed of the noise draws (the same for every run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for NoiseConfig {
    /// The 11 levels 0, 0.01, ..., 0.1 on the first 1000 test images, seed 0.
    fn default() -> Self {
        NoiseConfig {
            levels: default_levels(),
            samples: 1000,
            seed: 0,
        }
    }
}

impl NoiseConfig {
    /// Fails unless there are levels and every level lies in [0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.levels.is_empty() || self.levels.iter().any(|l| !(0.0..=1.0).contains(l)) {
            return Err(Error::Config(format!(
                "noise levels {:?} must be given and lie in [0, 1]",
                self.levels
            )));
        }
        Ok(())
    }
}

/// `img` on [0, 1] with noise of `kind` at `level`, clipped to [0, 1].
pub fn add_noise(img: &[f32], kind: NoiseKind, level: f64, rng: &mut impl Rng) -> Vec<f32> {
    let level = level as f32;
    img.iter()
        .map(|&v| {
            let noisy = match kind {
                NoiseKind::Gaussian => {
                    let z: f32 = StandardNormal.sample(rng);
                    v + level * z
                }
                NoiseKind::Uniform => v + level * 3f32.sqrt() * rng.random_range(-1.0f32..=1.0),
                NoiseKind::SaltAndPepper => {
                    if rng.random::<f32>() < level {
                        if rng.random::<bool>() {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    }
                }
            };
            noisy.clamp(0.0, 1.0)
        })
        .collect()
}

/// The generator of image `i` at level index `k`: the same for every model evaluated with `seed`.
fn noise_rng(seed: u64, k: usize, i: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((k as u64) << 32) | i as u64);
    rng
}

/// Images `indices` of `images` with the noise of level index `k` (the draws every model
/// evaluated with `noise_seed` gets), pixels concatenated.
pub fn noisy_pixels(
    images: &LabelledImages,
    indices: &[usize],
    kind: NoiseKind,
    level: f64,
    k: usize,
    noise_seed: u64,
) -> Vec<f32> {
    let mut pixels = Vec::with_capacity(indices.len() * images.shape.0 * images.shape.1);
    for &i in indices {
        pixels.extend(add_noise(
            images.image(i),
            kind,
            level,
            &mut noise_rng(noise_seed, k, i),
        ));
    }
    pixels
}

/// Writes the noisy test images a run is evaluated on into `out`, for other tools
/// (`scripts/eval_torch.py`): `labels.npy`, `noisy_<kind>_<k>.npy` per level (N, 1, H, W) on
/// [0, 1], and `images.json` (kind, levels, samples, seed).
pub fn save_noisy_images(
    config: &RunConfig,
    kind: NoiseKind,
    noise: &NoiseConfig,
    out: &Path,
) -> Result<()> {
    noise.validate()?;
    let images = evaluation_images(config, noise.samples)?;
    let (n, (h, w)) = (images.len(), images.shape);
    let indices: Vec<usize> = (0..n).collect();
    let labels: Vec<i64> = images.labels.iter().map(|&l| l as i64).collect();
    write_atomic(&out.join("labels.npy"), &encode(&[n], &labels))?;
    for (k, &level) in noise.levels.iter().enumerate() {
        let pixels = noisy_pixels(&images, &indices, kind, level, k, noise.seed);
        let path = out.join(format!("noisy_{}_{k}.npy", kind.name()));
        write_atomic(&path, &encode(&[n, 1, h, w], &pixels))?;
    }
    let meta = serde_json::json!({
        "kind": kind.name(), "levels": noise.levels, "samples": n, "seed": noise.seed,
        "data": config.data,
    });
    write_atomic(&out.join("images.json"), meta.to_string().as_bytes())
}

/// A run's accuracy at each noise level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseCurve {
    /// The run folder's name.
    pub run: String,
    /// Its condition.
    pub condition: Condition,
    /// Its strength a.
    pub strength: f64,
    /// Its seed.
    pub seed: u64,
    /// The noise.
    pub kind: NoiseKind,
    /// Seed of the noise draws.
    pub noise_seed: u64,
    /// Test images used (the first ones of the test set).
    pub samples: usize,
    /// Noise levels.
    pub levels: Vec<f64>,
    /// Accuracy at each level.
    pub accuracy: Vec<f64>,
}

/// The first `samples` test images of a run's data set, padded as in training (0: all).
pub fn evaluation_images(config: &RunConfig, samples: usize) -> Result<LabelledImages> {
    let test = pad_to_32(load_classification_set(&config.data)?.test);
    if samples > test.len() {
        return Err(Error::Config(format!(
            "{} samples asked for, but the test set of {} has {}",
            samples,
            config.data.display(),
            test.len()
        )));
    }
    Ok(if samples == 0 {
        test
    } else {
        test.truncated(samples)
    })
}

/// Evaluates the run in `dir` with noise of `kind` at every level of `noise` (`on_level` hears
/// each as it finishes) and stores the curve in `dir/results/noise_<kind>.json`.
pub fn noise_curve(
    dir: &Path,
    kind: NoiseKind,
    noise: &NoiseConfig,
    device: &Device,
    progress: &dyn Progress,
    on_level: &mut dyn FnMut(usize, f64),
) -> Result<NoiseCurve> {
    noise.validate()?;
    let (levels, noise_seed) = (&noise.levels, noise.seed);
    let config = RunConfig::load(dir)?;
    config.check_data(dir)?;
    let model = load_classifier(dir, device)?;
    let images = evaluation_images(&config, noise.samples)?;
    let (h, w) = images.shape;
    progress.stage(&format!("{} noise", kind.name()), levels.len() as u64);
    let mut accuracy = Vec::with_capacity(levels.len());
    for (k, &level) in levels.iter().enumerate() {
        progress.check()?;
        let mut correct = 0usize;
        let indices: Vec<usize> = (0..images.len()).collect();
        for chunk in indices.chunks(200) {
            let pixels = noisy_pixels(&images, chunk, kind, level, k, noise_seed);
            let x = Tensor::from_vec(pixels, (chunk.len(), 1, h, w), device)?;
            let predicted = model.predict(&x)?;
            correct += chunk
                .iter()
                .zip(&predicted)
                .filter(|(&i, &p)| images.labels[i] == p)
                .count();
        }
        let a = correct as f64 / images.len() as f64;
        accuracy.push(a);
        on_level(k, a);
        progress.advance(1);
    }
    let curve = NoiseCurve {
        run: run_name(dir),
        condition: config.condition,
        strength: config.strength,
        seed: config.seed,
        kind,
        noise_seed,
        samples: images.len(),
        levels: levels.clone(),
        accuracy,
    };
    let path = RunDir(dir).result("noise", kind.name());
    let text = serde_json::to_string_pretty(&curve)
        .map_err(|e| Error::file(path.display(), e.to_string()))?;
    write_atomic(&path, text.as_bytes())?;
    Ok(curve)
}

/// Mean and SEM over the runs of one condition (and strength) at each level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionCurve {
    /// The condition.
    pub condition: Condition,
    /// The strength a.
    pub strength: f64,
    /// Runs (seeds) averaged.
    pub runs: usize,
    /// Noise levels.
    pub levels: Vec<f64>,
    /// Mean accuracy.
    pub mean: Vec<f64>,
    /// Standard error of the mean (0 for one run).
    pub sem: Vec<f64>,
    /// The pre-declared summary: each run's mean accuracy over the levels, over the runs.
    pub mean_over_levels: MeanSem,
}

impl ConditionCurve {
    /// "Neural (model) (a = 20, 3 runs)"; None and Blur have no strength: "None (3 runs)".
    pub fn label(&self) -> String {
        let runs = format!("{} run{}", self.runs, if self.runs == 1 { "" } else { "s" });
        if self.condition.has_similarity_loss() {
            format!("{} (a = {}, {runs})", self.condition.label(), self.strength)
        } else {
            format!("{} ({runs})", self.condition.label())
        }
    }

    /// "Neural (model), a = 20", or the condition alone for None and Blur.
    pub fn name(&self) -> String {
        if self.condition.has_similarity_loss() {
            format!("{}, a = {}", self.condition.label(), self.strength)
        } else {
            self.condition.label().to_string()
        }
    }
}

/// The strength a curve's condition is grouped under: 0 for the conditions without a similarity
/// loss, which do not use it.
fn group_strength(c: &NoiseCurve) -> f64 {
    if c.condition.has_similarity_loss() {
        c.strength
    } else {
        0.0
    }
}

/// A run's mean accuracy over the levels: the area under its curve over the levels' range.
fn mean_over_levels(c: &NoiseCurve) -> f64 {
    c.accuracy.iter().sum::<f64>() / c.accuracy.len().max(1) as f64
}

/// The declared comparisons (`eval::comparisons`) of the groups `summarise` made of `curves`:
/// each run's mean accuracy over the levels (the primary measure), then its accuracy at the
/// strongest level, paired by seed, each a family of its own.
pub fn noise_comparisons(curves: &[NoiseCurve], groups: &[ConditionCurve]) -> Vec<Comparison> {
    let labels: Vec<String> = groups.iter().map(ConditionCurve::name).collect();
    let members: Vec<Member> = groups
        .iter()
        .zip(&labels)
        .map(|(g, label)| Member {
            label,
            condition: g.condition,
            strength: g.strength,
        })
        .collect();
    let values = |f: &dyn Fn(&NoiseCurve) -> f64| -> Vec<Vec<(u64, f64)>> {
        groups
            .iter()
            .map(|g| {
                curves
                    .iter()
                    .filter(|c| c.condition == g.condition && group_strength(c) == g.strength)
                    .map(|c| (c.seed, f(c)))
                    .collect()
            })
            .collect()
    };
    let Some(first) = curves.first() else {
        return Vec::new();
    };
    let strongest = first.levels.len().saturating_sub(1);
    let mut out = family(
        &members,
        &values(&mean_over_levels),
        &format!("mean accuracy over the {} noise levels", first.kind.name()),
        true,
    );
    out.extend(family(
        &members,
        &values(&|c| c.accuracy[strongest]),
        &format!(
            "accuracy at {} noise {}",
            first.kind.name(),
            first.levels.get(strongest).copied().unwrap_or(0.0)
        ),
        false,
    ));
    out
}

/// Groups curves by condition and strength (the runs of a condition without a similarity loss
/// form one group whatever their strength, which it does not use, and show strength 0); curves
/// of other levels than the first are refused.
pub fn summarise(curves: &[NoiseCurve]) -> Result<Vec<ConditionCurve>> {
    let mut out: Vec<ConditionCurve> = Vec::new();
    let Some(first) = curves.first() else {
        return Ok(out);
    };
    for c in curves {
        if c.levels != first.levels || c.kind != first.kind || c.noise_seed != first.noise_seed {
            return Err(Error::Config(format!(
                "run {} was evaluated with other noise or levels than {}",
                c.run, first.run
            )));
        }
    }
    let mut groups: Vec<(Condition, f64, Vec<&NoiseCurve>)> = Vec::new();
    for c in curves {
        let strength = group_strength(c);
        match groups
            .iter_mut()
            .find(|g| g.0 == c.condition && g.1 == strength)
        {
            Some(g) => g.2.push(c),
            None => groups.push((c.condition, strength, vec![c])),
        }
    }
    for (condition, strength, members) in groups {
        let (mut mean, mut sem) = (Vec::new(), Vec::new());
        for k in 0..first.levels.len() {
            let v: Vec<f64> = members.iter().map(|c| c.accuracy[k]).collect();
            let m = MeanSem::of(&v);
            mean.push(m.mean);
            sem.push(m.sem);
        }
        let means: Vec<f64> = members.iter().map(|c| mean_over_levels(c)).collect();
        out.push(ConditionCurve {
            condition,
            strength,
            runs: members.len(),
            levels: first.levels.clone(),
            mean,
            sem,
            mean_over_levels: MeanSem::of(&means),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_clipped_repeatable_and_of_the_asked_spread() {
        let img = vec![0.5f32; 20000];
        for kind in [NoiseKind::Gaussian, NoiseKind::Uniform] {
            let a = add_noise(&img, kind, 0.1, &mut noise_rng(1, 2, 3));
            assert_eq!(a, add_noise(&img, kind, 0.1, &mut noise_rng(1, 2, 3)));
            let sd = (a.iter().map(|v| (v - 0.5).powi(2)).sum::<f32>() / a.len() as f32).sqrt();
            assert!((sd - 0.1).abs() < 0.005, "{kind:?}: {sd}");
        }
        let s = add_noise(&img, NoiseKind::SaltAndPepper, 0.1, &mut noise_rng(1, 0, 0));
        let flipped = s.iter().filter(|&&v| v != 0.5).count() as f32 / s.len() as f32;
        assert!((flipped - 0.1).abs() < 0.01);
        assert!(s.iter().all(|&v| v == 0.5 || v == 0.0 || v == 1.0));
        let edge = add_noise(
            &[0.0, 1.0],
            NoiseKind::Gaussian,
            1.0,
            &mut noise_rng(0, 0, 0),
        );
        assert!(edge.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn summary_is_mean_and_sem_per_condition() {
        let curve = |run: &str, condition, acc: Vec<f64>| NoiseCurve {
            run: run.into(),
            condition,
            strength: 20.0,
            seed: 0,
            kind: NoiseKind::Gaussian,
            noise_seed: 0,
            samples: 10,
            levels: vec![0.0, 0.1],
            accuracy: acc,
        };
        let s = summarise(&[
            curve("a", Condition::None, vec![0.9, 0.5]),
            curve("b", Condition::None, vec![0.7, 0.3]),
            curve("c", Condition::Shuffle, vec![0.8, 0.6]),
        ])
        .unwrap();
        assert_eq!(s.len(), 2);
        assert!((s[0].mean[0] - 0.8).abs() < 1e-12);
        // Sample sd of (0.9, 0.7) is 0.1414; SEM = 0.1414 / sqrt 2 = 0.1.
        assert!((s[0].sem[1] - 0.1).abs() < 1e-12);
        assert_eq!((s[1].runs, s[1].sem[0]), (1, 0.0));
        assert_eq!(s[0].label(), "None (2 runs)");
        assert_eq!(s[1].label(), "Shuffle (a = 20, 1 run)");
        // None's runs are one group whatever strength they were given.
        let mut other = curve("d", Condition::None, vec![0.8, 0.4]);
        other.strength = 0.0;
        let s = summarise(&[curve("a", Condition::None, vec![0.9, 0.5]), other]).unwrap();
        assert_eq!((s.len(), s[0].runs, s[0].strength), (1, 2, 0.0));
    }
}
