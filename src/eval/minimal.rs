//! Minimal perturbations of a run's network over a fixed sample set (docs/method.md section 8):
//! one attack and norm at a time, a per-sample search over epsilon, verified
//! distances, the median as the robustness score, stored in the run folder.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::eval::attacks::brendel_bethge::{brendel_bethge, BrendelBethgeConfig};
use crate::eval::attacks::cw::{carlini_wagner, CwConfig};
use crate::eval::attacks::ddn::{ddn, DdnConfig};
use crate::eval::attacks::deepfool::{deepfool, DeepFoolConfig};
use crate::eval::attacks::fgsm::fgsm;
use crate::eval::attacks::fmn::{fmn, FmnConfig};
use crate::eval::attacks::pgd::{pgd_candidates, PgdConfig};
use crate::eval::attacks::{epsilon_search, verify_best, Found, Norm};
use crate::eval::noise::evaluation_images;
use crate::progress::Progress;
use crate::runs::classifier::load_classifier;
use crate::runs::config::RunConfig;
use crate::runs::run_dir::RunDir;
use crate::runs::store::run_name;

/// The attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AttackName {
    /// Fast gradient sign method (Linf).
    Fgsm,
    /// Projected gradient descent (Linf, L2), foolbox's defaults.
    Pgd,
    /// DeepFool (L2, Linf), foolbox's defaults; minimal by construction, no epsilon search.
    Deepfool,
    /// Decoupled direction and norm (L2), foolbox's defaults.
    Ddn,
    /// Fast minimum-norm (L0, L1, L2, Linf), foolbox's defaults.
    Fmn,
    /// Carlini & Wagner (L2); `--rounds` searches over its constant.
    Cw,
    /// Brendel & Bethge (L2, Linf), foolbox's defaults, from a noise or PGD starting point.
    #[serde(rename = "brendel-bethge")]
    BrendelBethge,
}

impl AttackName {
    /// Every attack, in the order menus show them.
    pub const ALL: [AttackName; 7] = [
        AttackName::Pgd,
        AttackName::Fgsm,
        AttackName::Deepfool,
        AttackName::Ddn,
        AttackName::Fmn,
        AttackName::Cw,
        AttackName::BrendelBethge,
    ];

    /// The name people use.
    pub fn label(self) -> &'static str {
        match self {
            AttackName::Fgsm => "FGSM",
            AttackName::Pgd => "PGD",
            AttackName::Deepfool => "DeepFool",
            AttackName::Ddn => "DDN",
            AttackName::Fmn => "FMN",
            AttackName::Cw => "C&W",
            AttackName::BrendelBethge => "Brendel & Bethge",
        }
    }

    /// The norms it is defined for.
    pub fn norms(self) -> &'static [Norm] {
        match self {
            AttackName::Fgsm => &[Norm::Linf],
            AttackName::Pgd | AttackName::Deepfool | AttackName::BrendelBethge => {
                &[Norm::Linf, Norm::L2]
            }
            AttackName::Ddn | AttackName::Cw => &[Norm::L2],
            AttackName::Fmn => &[Norm::L0, Norm::L1, Norm::L2, Norm::Linf],
        }
    }

    /// Whether it searches over epsilon (FGSM, PGD) rather than minimising the norm itself.
    pub fn searches_epsilon(self) -> bool {
        matches!(self, AttackName::Fgsm | AttackName::Pgd)
    }
}

/// What to attack and how (also the flags of `neureg attack`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct AttackConfig {
    /// The attack.
    #[arg(long, value_enum)]
    pub attack: AttackName,
    /// The norm.
    #[arg(long, value_enum, default_value = "linf")]
    pub norm: Norm,
    /// Test images attacked (the first ones, the same for every model).
    #[arg(long, default_value_t = AttackConfig::default().samples)]
    pub samples: usize,
    /// Images per batch.
    #[arg(long, default_value_t = AttackConfig::default().batch)]
    pub batch: usize,
    /// Bisection rounds of the per-sample epsilon search (FGSM, PGD); searches over the constant
    /// of C&W.
    #[arg(long, default_value_t = AttackConfig::default().rounds)]
    pub rounds: usize,
    /// Gradient steps of the attack (0: foolbox's default: PGD 40 for Linf, 50 for L2; DeepFool
    /// 50; DDN and FMN 100; Brendel & Bethge 1000; C&W neureg's 100 per search).
    #[arg(long, default_value_t = 0)]
    pub steps: usize,
    /// Seed of PGD's random start, DDN's replacement of vanishing gradients and Brendel &
    /// Bethge's noise starting points.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for AttackConfig {
    /// PGD in Linf on 100 samples with foolbox's step counts.
    fn default() -> Self {
        AttackConfig {
            attack: AttackName::Pgd,
            norm: Norm::Linf,
            samples: 100,
            batch: 50,
            rounds: 10,
            steps: 0,
            seed: 0,
        }
    }
}

impl AttackConfig {
    /// Refuses attack and norm pairs that do not exist here.
    pub fn validate(&self) -> Result<()> {
        let norms = self.attack.norms();
        if !norms.contains(&self.norm) {
            return Err(Error::Config(format!(
                "attack {} has no {:?} version (it has {norms:?})",
                self.attack.label(),
                self.norm
            )));
        }
        if self.samples == 0 || self.batch == 0 {
            return Err(Error::Config("samples and batch must be positive".into()));
        }
        Ok(())
    }

    /// The largest epsilon searched: the whole range of the images in that norm.
    fn max_epsilon(&self, pixels: usize) -> f32 {
        match self.norm {
            Norm::Linf => 1.0,
            Norm::L2 => (pixels as f32).sqrt(),
            Norm::L1 | Norm::L0 => pixels as f32,
        }
    }
}

/// The outcome on a run: per sample the smallest verified distance (None: not broken).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// The run folder's name.
    pub run: String,
    /// How it was attacked.
    pub config: AttackConfig,
    /// True label of each sample.
    pub labels: Vec<u32>,
    /// Smallest distance found per sample (0: already misclassified; None: not broken).
    pub distances: Vec<Option<f32>>,
    /// Median over the samples, unbroken ones counting as infinite (None if infinite).
    pub median: Option<f32>,
}

/// A batch as an attack finished it.
pub struct AttackedBatch<'a> {
    /// Index of its first sample in the sample set.
    pub first: usize,
    /// The original images (B, 1, H, W).
    pub images: &'a Tensor,
    /// Their true labels.
    pub labels: &'a [u32],
    /// The verified adversarials.
    pub found: &'a Found,
}

/// The median of `distances` with infinities (None when the median itself is infinite).
pub fn median(distances: &[f32]) -> Option<f32> {
    if distances.is_empty() {
        return None;
    }
    let mut v = distances.to_vec();
    v.sort_by(f32::total_cmp);
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    m.is_finite().then_some(m)
}

/// Attacks the run in `dir`; `on_batch` sees each batch as it is done. The result is stored as `dir/results/attack_<attack>_<norm>.json`.
pub fn attack_run(
    dir: &Path,
    config: &AttackConfig,
    device: &Device,
    progress: &dyn Progress,
    on_batch: &mut dyn FnMut(&AttackedBatch),
) -> Result<AttackResult> {
    let result = attack(dir, config, device, progress, on_batch)?;
    store(dir, "attack", config, &result)?;
    Ok(result)
}

/// Writes `value` as `dir/results/<kind>_<attack>_<norm>.json`.
fn store(dir: &Path, kind: &str, config: &AttackConfig, value: &impl Serialize) -> Result<()> {
    let path = RunDir(dir).result(kind, &result_stem(config));
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::file(path.display(), e.to_string()))?;
    write_atomic(&path, text.as_bytes())
}

/// [`attack_run`] without storing the result.
fn attack(
    dir: &Path,
    config: &AttackConfig,
    device: &Device,
    progress: &dyn Progress,
    on_batch: &mut dyn FnMut(&AttackedBatch),
) -> Result<AttackResult> {
    config.validate()?;
    let run_config = RunConfig::load(dir)?;
    run_config.check_data(dir)?;
    let model = load_classifier(dir, device)?;
    let images = evaluation_images(&run_config, config.samples)?;
    let (h, w) = images.shape;
    let max_eps = config.max_epsilon(h * w);
    let indices: Vec<usize> = (0..images.len()).collect();
    // The searching attacks report each round of the search, so that the bar moves within a
    // batch (one batch of a PGD search takes minutes on a CPU); the others each batch.
    let searching = matches!(config.attack, AttackName::Fgsm | AttackName::Pgd);
    let calls_per_image = if searching {
        config.rounds as u64 + 1
    } else {
        1
    };
    progress.stage(
        &format!("{} {:?}", config.attack.label(), config.norm),
        images.len() as u64 * calls_per_image,
    );
    let mut distances = Vec::with_capacity(images.len());
    for (k, chunk) in indices.chunks(config.batch).enumerate() {
        progress.check()?;
        let pixels: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| images.image(i).to_vec())
            .collect();
        let x = Tensor::from_vec(pixels, (chunk.len(), 1, h, w), device)?;
        let labels: Vec<u32> = chunk.iter().map(|&i| images.labels[i]).collect();
        let y = Tensor::new(labels.as_slice(), device)?;
        let search = |attack: &mut dyn FnMut(&[f32]) -> Result<Vec<Tensor>>| {
            epsilon_search(
                &model,
                &x,
                &labels,
                config.norm,
                max_eps,
                config.rounds,
                &mut |eps| {
                    let candidates = attack(eps)?;
                    progress.advance(chunk.len() as u64);
                    Ok(candidates)
                },
            )
        };
        // `--steps 0` keeps each attack's default; the minimum-norm attacks give one candidate.
        let steps = |default: usize| {
            if config.steps > 0 {
                config.steps
            } else {
                default
            }
        };
        let minimal = |adv: Tensor| verify_best(&model, &x, &[adv], &labels, config.norm);
        let found = match config.attack {
            AttackName::Fgsm => search(&mut |eps| Ok(vec![fgsm(&model, &x, &y, eps)?]))?,
            AttackName::Pgd => {
                let c = PgdConfig::foolbox(config.norm);
                let c = PgdConfig {
                    seed: config.seed,
                    steps: steps(c.steps),
                    ..c
                };
                search(&mut |eps| {
                    progress.check()?;
                    pgd_candidates(&model, &x, &y, eps, &c)
                })?
            }
            AttackName::Deepfool => {
                let c = DeepFoolConfig::foolbox(config.norm);
                let c = DeepFoolConfig {
                    steps: steps(c.steps),
                    ..c
                };
                minimal(deepfool(&model, &x, &labels, &c)?)?
            }
            AttackName::Ddn => {
                let c = DdnConfig::foolbox();
                let c = DdnConfig {
                    seed: config.seed,
                    steps: steps(c.steps),
                    ..c
                };
                minimal(ddn(&model, &x, &y, &c)?)?
            }
            AttackName::Fmn => {
                let c = FmnConfig::foolbox(config.norm);
                let c = FmnConfig {
                    steps: steps(c.steps),
                    ..c
                };
                minimal(fmn(&model, &x, &labels, &c)?)?
            }
            AttackName::Cw => {
                let c = CwConfig::neureg();
                let c = CwConfig {
                    binary_search_steps: config.rounds.max(1),
                    steps: steps(c.steps),
                    ..c
                };
                minimal(carlini_wagner(&model, &x, &labels, &c)?)?
            }
            AttackName::BrendelBethge => {
                let c = BrendelBethgeConfig::foolbox(config.norm);
                let c = BrendelBethgeConfig {
                    seed: config.seed,
                    steps: steps(c.steps),
                    ..c
                };
                minimal(brendel_bethge(&model, &x, &labels, &c)?)?
            }
        };
        on_batch(&AttackedBatch {
            first: k * config.batch,
            images: &x,
            labels: &labels,
            found: &found,
        });
        distances.extend(found.distance.iter().copied());
        if !searching {
            progress.advance(chunk.len() as u64);
        }
    }
    Ok(AttackResult {
        run: run_name(dir),
        config: config.clone(),
        labels: images.labels.clone(),
        median: median(&distances),
        distances: distances
            .iter()
            .map(|d| d.is_finite().then_some(*d))
            .collect(),
    })
}

/// The median distance against the iteration budget (the paper's Fig. 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetCurve {
    /// The run folder's name.
    pub run: String,
    /// The attack (its `steps` is the last budget).
    pub config: AttackConfig,
    /// Gradient steps.
    pub budgets: Vec<usize>,
    /// Median distance at each budget (None: infinite).
    pub medians: Vec<Option<f32>>,
}

/// Repeats the attack on the run in `dir` with each number of steps in `budgets` (any attack
/// but FGSM) and stores the curve as `dir/results/budget_<attack>_<norm>.json`.
pub fn budget_curve(
    dir: &Path,
    config: &AttackConfig,
    budgets: &[usize],
    device: &Device,
    progress: &dyn Progress,
) -> Result<BudgetCurve> {
    if config.attack == AttackName::Fgsm || budgets.contains(&0) {
        return Err(Error::Config(
            "an iteration budget needs an iterative attack (not FGSM) and budgets of at least one step".into(),
        ));
    }
    let mut medians = Vec::with_capacity(budgets.len());
    let mut last = config.clone();
    for &steps in budgets {
        last = AttackConfig {
            steps,
            ..config.clone()
        };
        // Not stored: the run's attack result stays the one the user ran at full length.
        medians.push(attack(dir, &last, device, progress, &mut |_| {})?.median);
    }
    let curve = BudgetCurve {
        run: run_name(dir),
        config: last,
        budgets: budgets.to_vec(),
        medians,
    };
    store(dir, "budget", config, &curve)?;
    Ok(curve)
}

/// `<attack>_<norm>`, as the result files name them.
fn result_stem(config: &AttackConfig) -> String {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    };
    format!(
        "{}_{}",
        name(serde_json::to_value(config.attack)),
        name(serde_json::to_value(config.norm))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_counts_unbroken_samples_as_infinite() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, f32::INFINITY, 4.0]), Some(3.0));
        assert_eq!(median(&[1.0, f32::INFINITY, f32::INFINITY]), None);
        assert_eq!(median(&[0.0, 0.0, 5.0]), Some(0.0));
    }
}
