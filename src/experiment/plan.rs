//! An experiment's plan: the shared training settings, the conditions with their targets and
//! strengths, the seeds, the noise and the attacks; read from TOML or JSON (any setting left
//! out takes `neureg train`'s default), or one of the presets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::eval::attacks::Norm;
use crate::eval::minimal::{AttackConfig, AttackName};
use crate::eval::noise::{NoiseConfig, NoiseKind};
use crate::nn::optim::schedule::Schedule;
use crate::runs::config::{Condition, RunConfig};

/// The scale of a preset, chosen by measuring time and accuracy on 2 cores (README, "Choosing
/// the lecture's and the study's scale").
struct Scale {
    train_limit: usize,
    width: f64,
    epochs: usize,
    similarity_batch: usize,
    precise_bn_batches: usize,
    seeds: u64,
}

/// The lecture's: None reaches 0.85 on the 6000 sample images in 9 epochs at width 1/8; a
/// similarity batch of 16 costs a regularised unit a third more than None's, where 64 cost
/// nearly double.
const LECTURE: Scale = Scale {
    train_limit: 6000,
    width: 0.125,
    epochs: 9,
    similarity_batch: 16,
    precise_bn_batches: 25,
    seeds: 4,
};

/// Test images per FMN attack in the study: at width 1/4 an attack on 200 took as long as a
/// third of the unit's training.
const STUDY_ATTACK_SAMPLES: usize = 100;

/// The study's: None reaches 0.9 at width 1/4 in 10 epochs; 10 seeds, because with the exact
/// sign-flip test and Holm over its 10 declared comparisons no p below 0.05 is possible under 9
/// (10 x 2 / 2^9 = 0.039), and the tenth halves that floor.
const STUDY: Scale = Scale {
    train_limit: 6000,
    width: 0.25,
    epochs: 10,
    similarity_batch: 16,
    precise_bn_batches: 50,
    seeds: 10,
};

impl Scale {
    /// `base` at this scale: the cosine schedule, every shipped test image.
    fn training(&self, base: RunConfig) -> RunConfig {
        RunConfig {
            train_limit: self.train_limit,
            test_limit: 0,
            width: self.width,
            epochs: self.epochs,
            schedule: Schedule::Cosine,
            similarity_batch: self.similarity_batch,
            precise_bn_batches: self.precise_bn_batches,
            ..base
        }
    }
}

/// A condition of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionPlan {
    /// Which condition.
    pub condition: Condition,
    /// Its target (a target `.npy`, or for Feature a run folder or VGG weights); None takes no
    /// target.
    #[serde(default)]
    pub target: Option<PathBuf>,
    /// Strengths a of the similarity loss (ignored for None and Blur, which have a = 0).
    #[serde(default = "default_strengths")]
    pub strengths: Vec<f64>,
    /// The Feature run's tap.
    #[serde(default)]
    pub feature_tap: Option<usize>,
    /// The layer of a Feature target given as VGG weights (default: the training's).
    #[serde(default)]
    pub feature_layer: Option<String>,
    /// The Pixel (thresholded) control's threshold (default: the training's).
    #[serde(default)]
    pub pixel_threshold: Option<f64>,
    /// The Blur control's width in pixels (default: the training's).
    #[serde(default)]
    pub blur_sigma: Option<f64>,
    /// Folder-name prefix of its units (default: the condition's name), to tell apart two
    /// conditions of the same kind (e.g. two Custom targets).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_strengths() -> Vec<f64> {
    vec![RunConfig::default().strength]
}

/// Noise robustness: the kinds of noise, each evaluated as [`NoiseConfig`] says (its fields
/// sit beside `kinds` in the plan's `noise` table; unknown ones are refused by the parser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoisePlan {
    /// Kinds of noise.
    pub kinds: Vec<NoiseKind>,
    /// Levels, test images and seed.
    #[serde(flatten)]
    pub config: NoiseConfig,
}

impl Default for NoisePlan {
    fn default() -> Self {
        NoisePlan {
            kinds: vec![NoiseKind::Gaussian],
            config: NoiseConfig::default(),
        }
    }
}

/// What to compare and how (`plan.json` in the experiment folder, fully resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Shown in the report.
    pub name: String,
    /// Settings every run shares; condition, target, strength and seed come from the units.
    pub training: RunConfig,
    /// The conditions compared, in the report's order.
    pub conditions: Vec<ConditionPlan>,
    /// Seeds of every (condition, strength).
    pub seeds: Vec<u64>,
    /// Noise robustness.
    pub noise: NoisePlan,
    /// Attacks, each on the same first test images of every unit.
    pub attacks: Vec<AttackConfig>,
}

/// One (condition, strength, seed): a run folder trained, then evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Its number (the Slurm array index).
    pub index: usize,
    /// The index of its condition in the plan.
    pub condition: usize,
    /// Its run folder's name.
    pub name: String,
    /// The run's configuration.
    pub config: RunConfig,
}

/// The presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Is it the brain, in a lecture: None, Neural (model), Neural (data), Shuffle, Pixel
    /// (thresholded) and Blur on the shipped samples, sized for a 2-core laptop (see the README
    /// for what each setting costs in time and in power).
    Lecture,
    /// Is it the brain, overnight: None, Neural (model), Neural (data), Shuffle, Pixel
    /// (thresholded), Pixel (cosine) and Blur with more seeds and data; noise and FMN attacks in
    /// L2 and Linf. For a CPU night or a Slurm array.
    Study,
    /// The paper's scale: grayscale CIFAR-10 (give `training.data`), ResNet18 at full width, 40
    /// epochs, the paper's schedule, 1000 attack samples, 5 seeds.
    Paper,
}

impl Plan {
    /// A preset whose sample files live in `samples` (the shipped `sample_data`).
    pub fn preset(preset: Preset, samples: &Path) -> Plan {
        let target = |file: &str| Some(samples.join("targets").join(file));
        let condition = |condition, file: Option<&str>| ConditionPlan {
            condition,
            target: file.and_then(target),
            strengths: default_strengths(),
            feature_tap: None,
            feature_layer: None,
            pixel_threshold: None,
            blur_sigma: None,
            name: None,
        };
        let paper = vec![
            condition(Condition::None, None),
            condition(Condition::NeuralModel, Some("neural_model.npy")),
            condition(Condition::NeuralData, Some("neural_data.npy")),
            condition(Condition::Shuffle, Some("neural_model.npy")),
        ];
        let with = |extra: &[Condition]| {
            let mut c = paper.clone();
            c.extend(extra.iter().map(|&x| condition(x, None)));
            c
        };
        let training = RunConfig {
            data: samples.join("fashion-mnist"),
            images: samples.join("scans").join("scan_1.zip"),
            ..RunConfig::default()
        };
        let attack = |attack, norm, samples| AttackConfig {
            attack,
            norm,
            samples,
            ..AttackConfig::default()
        };
        match preset {
            Preset::Lecture => Plan {
                name: "lecture".into(),
                training: LECTURE.training(training),
                conditions: with(&[Condition::PixelThresholded, Condition::Blur]),
                seeds: (0..LECTURE.seeds).collect(),
                noise: NoisePlan::default(),
                attacks: vec![attack(AttackName::Fmn, Norm::L2, 50)],
            },
            Preset::Study => Plan {
                name: "study".into(),
                training: STUDY.training(training),
                conditions: with(&[
                    Condition::PixelThresholded,
                    Condition::PixelCosine,
                    Condition::Blur,
                ]),
                seeds: (0..STUDY.seeds).collect(),
                noise: NoisePlan::default(),
                attacks: vec![
                    attack(AttackName::Fmn, Norm::L2, STUDY_ATTACK_SAMPLES),
                    attack(AttackName::Fmn, Norm::Linf, STUDY_ATTACK_SAMPLES),
                ],
            },
            Preset::Paper => Plan {
                name: "paper".into(),
                training: training.paper_scale(),
                conditions: paper,
                seeds: vec![0, 1, 2, 3, 4],
                noise: NoisePlan {
                    kinds: vec![
                        NoiseKind::Gaussian,
                        NoiseKind::Uniform,
                        NoiseKind::SaltAndPepper,
                    ],
                    config: NoiseConfig {
                        samples: 0,
                        ..NoiseConfig::default()
                    },
                },
                attacks: [Norm::L0, Norm::L1, Norm::L2, Norm::Linf]
                    .into_iter()
                    .map(|norm| attack(AttackName::Fmn, norm, 1000))
                    .chain([
                        attack(AttackName::Pgd, Norm::Linf, 1000),
                        attack(AttackName::Ddn, Norm::L2, 1000),
                    ])
                    .collect(),
            },
        }
    }

    /// Reads a plan file (`.toml`, or JSON otherwise); relative paths in it are relative to the
    /// file's folder.
    pub fn read(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: Value = if path.extension().is_some_and(|e| e == "toml") {
            let t: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::file(path.display(), format!("not a TOML plan: {e}")))?;
            serde_json::to_value(t).map_err(|e| Error::file(path.display(), e.to_string()))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| Error::file(path.display(), format!("not a JSON plan: {e}")))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut plan =
            Plan::from_value(value).map_err(|e| Error::file(path.display(), e.to_string()))?;
        plan.resolve_paths(base);
        Ok(plan)
    }

    /// A plan from its JSON form, settings left out taking their defaults.
    pub fn from_value(value: Value) -> Result<Plan> {
        let Value::Object(mut map) = value else {
            return Err(Error::Config("a plan is a table of settings".into()));
        };
        let take = |map: &mut serde_json::Map<String, Value>, key: &str| map.remove(key);
        let training = merge(
            &RunConfig::default(),
            take(&mut map, "training"),
            "training",
        )?;
        let noise = merge(&NoisePlan::default(), take(&mut map, "noise"), "noise")?;
        let attacks = match take(&mut map, "attacks") {
            Some(Value::Array(list)) => list
                .into_iter()
                .enumerate()
                .map(|(k, v)| merge(&AttackConfig::default(), Some(v), &format!("attacks[{k}]")))
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(Error::Config("attacks: expected a list".into())),
            None => Vec::new(),
        };
        let conditions: Vec<ConditionPlan> = match take(&mut map, "conditions") {
            Some(v) => parse(v, "conditions")?,
            None => return Err(Error::Config("the plan names no conditions".into())),
        };
        let seeds: Vec<u64> = match take(&mut map, "seeds") {
            Some(v) => parse(v, "seeds")?,
            None => vec![0],
        };
        let name = match take(&mut map, "name") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(Error::Config("name: expected text".into())),
            None => "experiment".into(),
        };
        if let Some(key) = map.keys().next() {
            return Err(Error::Config(format!(
                "unknown setting {key:?} (a plan has name, seeds, training, conditions, noise, attacks)"
            )));
        }
        let plan = Plan {
            name,
            training,
            conditions,
            seeds,
            noise,
            attacks,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Applies `key=value` overrides (`training.epochs=10`, `seeds=[0,1]`, `noise.samples=200`);
    /// a value that is not JSON is taken as text.
    pub fn with_overrides(&self, overrides: &[String]) -> Result<Plan> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut value =
            serde_json::to_value(self).map_err(|e| Error::Config(format!("plan: {e}")))?;
        for o in overrides {
            let (key, raw) = o
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("override {o:?}: expected key=value")))?;
            let new: Value =
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
            let mut slot = &mut value;
            for part in key.split('.') {
                slot = match part.parse::<usize>() {
                    Ok(i) => slot.get_mut(i),
                    Err(_) => slot.get_mut(part),
                }
                .ok_or_else(|| Error::Config(format!("override {o:?}: no setting {key:?}")))?;
            }
            *slot = new;
        }
        let plan: Plan = serde_json::from_value(value)
            .map_err(|e| Error::Config(format!("overrides {overrides:?}: {e}")))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Makes the plan's relative paths relative to `base`.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.training.data);
        fix(&mut self.training.images);
        for c in &mut self.conditions {
            if let Some(t) = &mut c.target {
                fix(t);
            }
        }
    }

    /// Checks what can be checked without files: targets where needed, unique unit names,
    /// attack and norm pairs, noise levels.
    pub fn validate(&self) -> Result<()> {
        if self.conditions.is_empty() || self.seeds.is_empty() {
            return Err(Error::Config("a plan needs conditions and seeds".into()));
        }
        for c in &self.conditions {
            if c.condition.needs_target() && c.target.is_none() {
                return Err(Error::Config(format!(
                    "condition {} needs a target",
                    c.condition.label()
                )));
            }
        }
        self.noise.config.validate()?;
        for a in &self.attacks {
            a.validate()?;
        }
        let units = self.units();
        for u in &units {
            u.config.validate()?;
        }
        for (k, u) in units.iter().enumerate() {
            if units[..k].iter().any(|v| v.name == u.name) {
                return Err(Error::Config(format!(
                    "two units are named {}: give one of the conditions a name",
                    u.name
                )));
            }
        }
        Ok(())
    }

    /// The units in array order: seed by seed, so that a partial experiment compares every
    /// condition on its first seeds.
    pub fn units(&self) -> Vec<Unit> {
        let mut units = Vec::new();
        for &seed in &self.seeds {
            for (condition, c) in self.conditions.iter().enumerate() {
                let strengths = if c.condition.has_similarity_loss() {
                    c.strengths.clone()
                } else {
                    vec![0.0]
                };
                for strength in strengths {
                    let config = RunConfig {
                        condition: c.condition,
                        target: c.target.clone(),
                        strength,
                        seed,
                        feature_tap: c.feature_tap.unwrap_or(self.training.feature_tap),
                        feature_layer: c
                            .feature_layer
                            .clone()
                            .unwrap_or_else(|| self.training.feature_layer.clone()),
                        pixel_threshold: c.pixel_threshold.unwrap_or(self.training.pixel_threshold),
                        blur_sigma: c.blur_sigma.unwrap_or(self.training.blur_sigma),
                        ..self.training.clone()
                    };
                    let name = match &c.name {
                        Some(prefix) => format!("{prefix}-a{strength}-seed{seed}"),
                        None => config.folder_name(),
                    };
                    units.push(Unit {
                        index: units.len(),
                        condition,
                        name,
                        config,
                    });
                }
            }
        }
        units
    }
}

/// `defaults` with the settings of `value` (a table) put in; an unknown setting is an error.
fn merge<T: Serialize + serde::de::DeserializeOwned>(
    defaults: &T,
    value: Option<Value>,
    what: &str,
) -> Result<T> {
    let mut base = serde_json::to_value(defaults).map_err(|e| Error::Config(e.to_string()))?;
    match value {
        None => {}
        Some(Value::Object(given)) => {
            let Value::Object(base_map) = &mut base else {
                return Err(Error::Config(format!("{what}: not a table")));
            };
            for (k, v) in given {
                if !base_map.contains_key(&k) {
                    return Err(Error::Config(format!("{what}: unknown setting {k:?}")));
                }
                base_map.insert(k, v);
            }
        }
        Some(_) => return Err(Error::Config(format!("{what}: expected a table"))),
    }
    serde_json::from_value(base).map_err(|e| Error::Config(format!("{what}: {e}")))
}

/// A plan section of type `T`.
fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Config(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_plan_fills_defaults_resolves_paths_and_lists_units_seed_by_seed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(
            &path,
            r#"
name = "tiny"
seeds = [0, 1]
[training]
epochs = 2
data = "data/fmnist"
[[conditions]]
condition = "none"
[[conditions]]
condition = "shuffle"
target = "t.npy"
strengths = [1, 10]
[noise]
levels = [0, 0.05]
[[attacks]]
attack = "fmn"
norm = "l2"
samples = 7
"#,
        )
        .unwrap();
        let plan = Plan::read(&path).unwrap();
        assert_eq!(plan.training.epochs, 2);
        assert_eq!(plan.training.batch, RunConfig::default().batch);
        assert_eq!(plan.training.data, dir.path().join("data/fmnist"));
        assert_eq!(plan.noise.config.samples, 1000);
        assert_eq!(plan.attacks[0].samples, 7);
        assert_eq!(plan.attacks[0].batch, AttackConfig::default().batch);
        let names: Vec<String> = plan.units().into_iter().map(|u| u.name).collect();
        assert_eq!(
            names,
            [
                "none-a0-seed0",
                "shuffle-a1-seed0",
                "shuffle-a10-seed0",
                "none-a0-seed1",
                "shuffle-a1-seed1",
                "shuffle-a10-seed1"
            ]
        );
        let u = &plan.units()[4];
        assert_eq!((u.index, u.config.seed, u.config.strength), (4, 1, 1.0));
        assert_eq!(u.config.target, Some(dir.path().join("t.npy")));

        let changed = plan
            .with_overrides(&["training.epochs=5".into(), "seeds=[3]".into()])
            .unwrap();
        assert_eq!((changed.training.epochs, changed.units().len()), (5, 3));
        assert!(plan.with_overrides(&["training.epoch=5".into()]).is_err());
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let bad = |text: &str| {
            let v: toml::Table = toml::from_str(text).unwrap();
            Plan::from_value(serde_json::to_value(v).unwrap())
                .unwrap_err()
                .to_string()
        };
        let one = "[[conditions]]\ncondition = \"none\"\n";
        assert!(bad(&format!("{one}[training]\nepoch = 3")).contains("unknown setting \"epoch\""));
        assert!(bad(&format!("sed = [1]\n{one}")).contains("unknown setting \"sed\""));
        assert!(bad(&format!("{one}sed = [1]")).contains("unknown field `sed`"));
        assert!(bad("[[conditions]]\ncondition = \"shuffle\"").contains("needs a target"));
        assert!(bad(&format!(
            "{one}[[attacks]]\nattack = \"ddn\"\nnorm = \"l0\""
        ))
        .contains("no L0"));
        assert!(bad("seeds = [1]").contains("no conditions"));
        assert!(bad(&format!("{one}[noise]\nsample = 10")).contains("unknown setting \"sample\""));
        assert!(bad(&format!("{one}[noise]\nlevels = [0.5, 2.0]")).contains("lie in [0, 1]"));
        let twice = "[[conditions]]\ncondition = \"custom\"\ntarget = \"a.npy\"\n\
                     [[conditions]]\ncondition = \"custom\"\ntarget = \"b.npy\"";
        assert!(bad(twice).contains("two units are named custom-a20-seed0"));
    }

    #[test]
    fn the_presets_are_valid_plans() {
        for preset in [Preset::Lecture, Preset::Study, Preset::Paper] {
            let plan = Plan::preset(preset, Path::new("/samples"));
            plan.validate().unwrap();
            let json = serde_json::to_value(&plan).unwrap();
            assert_eq!(Plan::from_value(json).unwrap(), plan);
        }
        // A plan.json written before the noise settings were one type reads the same.
        let old =
            r#"{"kinds": ["gaussian", "uniform"], "levels": [0.0, 0.5], "samples": 7, "seed": 3}"#;
        let noise: NoisePlan = serde_json::from_str(old).unwrap();
        assert_eq!(noise.kinds, [NoiseKind::Gaussian, NoiseKind::Uniform]);
        let config = NoiseConfig {
            levels: vec![0.0, 0.5],
            samples: 7,
            seed: 3,
        };
        assert_eq!(noise.config, config);
        assert_eq!(
            serde_json::to_value(&noise).unwrap(),
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
        let lecture = Plan::preset(Preset::Lecture, Path::new("/samples"));
        assert_eq!(lecture.units().len(), 6 * LECTURE.seeds as usize);
        let study = Plan::preset(Preset::Study, Path::new("/samples"));
        assert_eq!(study.units().len(), 7 * STUDY.seeds as usize);
        // The controls need no target file; Blur has no similarity loss.
        let blur = study
            .units()
            .into_iter()
            .find(|u| u.config.condition == Condition::Blur);
        assert_eq!(
            blur.map(|u| (u.name, u.config.target)),
            Some(("blur-a0-seed0".into(), None))
        );
    }
}
