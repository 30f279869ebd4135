//! Everything needed to repeat a regularised training run (docs/method.md section 7).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::nn::models::resnet::{Depth, ResNetConfig};
use crate::nn::optim::schedule::Schedule;
use crate::runs::inputs::{absolute_input, stored_input};
use crate::runs::run_dir::RunDir;

/// The paper's conditions: which matrix the similarity loss pulls towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// No similarity loss (a = 0).
    None,
    /// The averaged model similarity (a target file from `neureg target`).
    NeuralModel,
    /// The raw single-trial similarity (a target file from `neureg target --data`).
    NeuralData,
    /// A target's off-diagonal entries permuted at random, kept symmetric.
    Shuffle,
    /// The pixel similarity of the target images, thresholded to +1, 0 and -1 at
    /// `pixel_threshold` (the control of Attias, Pehlevan and Obeid 2024).
    PixelThresholded,
    /// The plain pixel similarity (centred cosine) of the target images.
    PixelCosine,
    /// No similarity loss; a fixed Gaussian blur of `blur_sigma` pixels in front of the network
    /// (the low-frequency control of Li et al. 2023).
    Blur,
    /// Cosine similarity of a tap of another run's network on the scan images.
    Feature,
    /// Any symmetric matrix in a `.npy` file.
    Custom,
}

impl Condition {
    /// The name shown in tables and plots (the paper's).
    pub fn label(self) -> &'static str {
        match self {
            Condition::None => "None",
            Condition::NeuralModel => "Neural (model)",
            Condition::NeuralData => "Neural (data)",
            Condition::Shuffle => "Shuffle",
            Condition::PixelThresholded => "Pixel (thresholded)",
            Condition::PixelCosine => "Pixel (cosine)",
            Condition::Blur => "Blur",
            Condition::Feature => "Feature",
            Condition::Custom => "Custom",
        }
    }

    /// Every condition: the paper's, then the controls added since.
    pub const ALL: [Condition; 9] = [
        Condition::None,
        Condition::NeuralModel,
        Condition::NeuralData,
        Condition::Shuffle,
        Condition::PixelThresholded,
        Condition::PixelCosine,
        Condition::Blur,
        Condition::Feature,
        Condition::Custom,
    ];

    /// Whether the condition pulls towards a similarity matrix (all but None and Blur).
    pub fn has_similarity_loss(self) -> bool {
        !matches!(self, Condition::None | Condition::Blur)
    }

    /// Whether it needs a target file (`--target`): the Pixel controls compute theirs from the
    /// target images.
    pub fn needs_target(self) -> bool {
        self.has_similarity_loss()
            && !matches!(self, Condition::PixelThresholded | Condition::PixelCosine)
    }
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum and weight decay (the paper's).
    Sgd,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// Which images set the batch-norm running statistics that evaluation normalises by.
///
/// A concatenated pass over both batches is not offered: the scan images (36 x 64) and the
/// classification images (32 x 32) differ in size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BnStatistics {
    /// The classification images alone: the similarity pass normalises by its own batch's
    /// statistics and leaves the running statistics alone (the default).
    Classification,
    /// The classification images alone, and the similarity pass in evaluation mode (normalised
    /// by the running statistics of the classification images).
    SimilarityEval,
    /// Both passes move the running statistics, so evaluation normalises test images by a
    /// mixture with the scan images: the defect of runs made before this field existed, kept
    /// so that they stay readable and resume as they began.
    Mixed,
}

impl BnStatistics {
    /// What a `config.json` without the field used: it predates the fix.
    fn before_the_fix() -> Self {
        BnStatistics::Mixed
    }
}

/// The demo's classification set (a `sample_data/` path is looked up in the sample data when
/// the working folder has none; see `crate::samples`).
const DEFAULT_DATA: &str = "sample_data/fashion-mnist";
/// The demo's target images (looked up as [`DEFAULT_DATA`] is).
const DEFAULT_IMAGES: &str = "sample_data/scans/scan_1.zip";

/// The paper's VGG layer, also for runs stored before the field existed.
fn default_feature_layer() -> String {
    "conv3_1".into()
}

/// The Pixel control's threshold: 0.8, pixel-reg's recipe for CIFAR and for the 36 x 64
/// ImageNet images of Li et al. (their code's default is 0.6).
fn default_pixel_threshold() -> f64 {
    0.8
}

/// The Blur control's width: BlurNet's 1.5 pixels.
fn default_blur_sigma() -> f64 {
    1.5
}

/// A run's configuration (`config.json`; also the flags of `neureg train`).
/// The defaults are a demo that finishes in minutes on two CPU cores; `--paper`
/// sets the paper's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct RunConfig {
    /// Classification set: CIFAR binary (.tar.gz or folder), IDX folder or image folder.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Use at most this many training images (0: all).
    #[arg(long, default_value_t = RunConfig::default().train_limit)]
    pub train_limit: usize,
    /// Use at most this many test images (0: all).
    #[arg(long, default_value_t = RunConfig::default().test_limit)]
    pub test_limit: usize,
    /// Network depth.
    #[arg(long, value_enum, default_value = "resnet18")]
    pub depth: Depth,
    /// Channel multiplier (1 = the paper's 64 channels in the first stage).
    #[arg(long, default_value_t = RunConfig::default().width)]
    pub width: f64,
    /// Tapped conv layers, comma-separated (default: the stem and each stage's end).
    #[arg(long, value_delimiter = ',')]
    pub taps: Vec<usize>,
    /// Condition (which target).
    #[arg(long, value_enum, default_value = "none")]
    pub condition: Condition,
    /// Target: a target .npy (Neural (model), Neural (data), Shuffle, Custom), or for Feature a
    /// run folder or VGG16/VGG19 weights (.safetensors).
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// The tap of the Feature run's network whose similarity is the target.
    #[arg(long, default_value_t = RunConfig::default().feature_tap)]
    pub feature_tap: usize,
    /// The layer of a Feature target given as VGG16/VGG19 weights (a torchvision state dict in
    /// a .safetensors file): conv3_1 (after its ReLU, the paper's), relu3_1, pool3, features.N.
    #[arg(long, default_value = "conv3_1")]
    #[serde(default = "default_feature_layer")]
    pub feature_layer: String,
    /// Where the target's images are: a scan (zip or folder) or an image folder.
    #[arg(long, default_value = DEFAULT_IMAGES)]
    pub images: PathBuf,
    /// Strength a of the similarity loss (Eq. 7).
    #[arg(long, default_value_t = RunConfig::default().strength)]
    pub strength: f64,
    /// Seed of the weights, the batch order, the augmentation and the Shuffle permutation.
    #[arg(long, default_value_t = RunConfig::default().seed)]
    pub seed: u64,
    /// Epochs.
    #[arg(long, default_value_t = RunConfig::default().epochs)]
    pub epochs: usize,
    /// Batch size (classification and similarity batches alike).
    #[arg(long, default_value_t = RunConfig::default().batch)]
    pub batch: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = RunConfig::default().lr)]
    pub lr: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "paper")]
    pub schedule: Schedule,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: Optimizer,
    /// SGD momentum.
    #[arg(long, default_value_t = RunConfig::default().momentum)]
    pub momentum: f64,
    /// Weight decay.
    #[arg(long, default_value_t = RunConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// A metrics line every this many steps.
    #[arg(long, default_value_t = RunConfig::default().log_every)]
    pub log_every: usize,
    /// Which images set the batch-norm running statistics used in evaluation.
    #[arg(long, value_enum, default_value = "classification")]
    #[serde(default = "BnStatistics::before_the_fix")]
    pub bn_statistics: BnStatistics,
    /// Precise batch norm: before every checkpoint the running statistics are recomputed as the
    /// mean and variance of this many augmented training batches in training mode, no weights
    /// changed (Wu and Johnson 2021); 0 turns it off (runs stored before it existed read as 0).
    #[arg(long, default_value_t = RunConfig::default().precise_bn_batches)]
    #[serde(default)]
    pub precise_bn_batches: usize,
    /// Images in the similarity batch (0: the classification batch's size). The similarity pass
    /// costs most of a regularised step; a smaller batch has fewer pairs per step.
    #[arg(long, default_value_t = RunConfig::default().similarity_batch)]
    #[serde(default)]
    pub similarity_batch: usize,
    /// The Pixel (thresholded) control's threshold TH: +1 above TH, -1 below -TH, 0 between.
    #[arg(long, default_value_t = default_pixel_threshold())]
    #[serde(default = "default_pixel_threshold")]
    pub pixel_threshold: f64,
    /// The Blur control's Gaussian width in pixels (kernel half-size ceil(2.5 sigma), circular).
    #[arg(long, default_value_t = default_blur_sigma())]
    #[serde(default = "default_blur_sigma")]
    pub blur_sigma: f64,
    /// neureg's version (set when the run starts).
    #[arg(skip)]
    #[serde(default)]
    pub version: String,
}

impl Default for RunConfig {
    /// The demo: a quarter-width ResNet18 on 2000 sample Fashion-MNIST images for 3 epochs.
    fn default() -> Self {
        RunConfig {
            data: PathBuf::from(DEFAULT_DATA),
            train_limit: 2000,
            test_limit: 500,
            depth: Depth::Resnet18,
            width: 0.25,
            taps: Vec::new(),
            condition: Condition::None,
            target: None,
            feature_tap: 9,
            feature_layer: default_feature_layer(),
            images: PathBuf::from(DEFAULT_IMAGES),
            strength: 20.0,
            seed: 0,
            epochs: 3,
            batch: 64,
            lr: 0.1,
            schedule: Schedule::Paper,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            weight_decay: 5e-4,
            log_every: 5,
            bn_statistics: BnStatistics::Classification,
            precise_bn_batches: 100,
            similarity_batch: 0,
            pixel_threshold: default_pixel_threshold(),
            blur_sigma: default_blur_sigma(),
            version: String::new(),
        }
    }
}

impl RunConfig {
    /// The paper's scale: full width, 40 epochs, the paper's schedule, all images.
    pub fn paper_scale(mut self) -> Self {
        self.width = 1.0;
        self.epochs = 40;
        self.batch = 64;
        self.lr = 0.1;
        self.schedule = Schedule::Paper;
        self.train_limit = 0;
        self.test_limit = 0;
        self
    }

    /// The network this run trains, for `classes` classes.
    pub fn network(&self, classes: usize) -> ResNetConfig {
        ResNetConfig {
            depth: self.depth,
            width: self.width,
            classes,
            taps: if self.taps.is_empty() {
                self.depth.default_taps()
            } else {
                self.taps.clone()
            },
            blur: (self.condition == Condition::Blur).then_some(self.blur_sigma),
        }
    }

    /// Whether the similarity loss is used.
    pub fn regularised(&self) -> bool {
        self.condition.has_similarity_loss() && self.strength != 0.0
    }

    /// Images per similarity batch.
    pub fn similarity_batch_size(&self) -> usize {
        if self.similarity_batch == 0 {
            self.batch
        } else {
            self.similarity_batch
        }
    }

    /// A warning for runs whose evaluation is corrupted by the batch-norm defect, if this is one.
    pub fn notice(&self) -> Option<String> {
        (self.bn_statistics == BnStatistics::Mixed && self.regularised()).then(|| {
            "made before the batch-norm fix: the similarity pass moved the running statistics \
             that evaluation uses, so its test accuracy, noise curves and attacks are not \
             comparable with newer runs"
                .to_string()
        })
    }

    /// Checks the settings that do not need files.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 || self.batch < 2 || self.log_every == 0 {
            return bad("epochs and log_every must be positive and the batch at least 2".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite() && self.strength.is_finite()) {
            return bad(format!(
                "learning rate {} or strength {} is not usable",
                self.lr, self.strength
            ));
        }
        if self.condition.needs_target() && self.target.is_none() {
            return bad(format!(
                "condition {} needs --target",
                self.condition.label()
            ));
        }
        if self.similarity_batch == 1 {
            return bad("a similarity batch needs at least 2 images".into());
        }
        if !(self.pixel_threshold > 0.0 && self.pixel_threshold < 1.0) {
            return bad(format!(
                "pixel threshold {} must lie strictly between 0 and 1",
                self.pixel_threshold
            ));
        }
        crate::nn::models::blur::check_sigma(self.blur_sigma)?;
        self.network(2).validate()
    }

    /// One configuration per seed and strength (an empty list keeps this run's value).
    pub fn sweep(&self, seeds: &[u64], strengths: &[f64]) -> Vec<RunConfig> {
        let seeds = if seeds.is_empty() {
            vec![self.seed]
        } else {
            seeds.to_vec()
        };
        let strengths = if strengths.is_empty() {
            vec![self.strength]
        } else {
            strengths.to_vec()
        };
        let mut out = Vec::new();
        for &strength in &strengths {
            for &seed in &seeds {
                out.push(RunConfig {
                    seed,
                    strength,
                    ..self.clone()
                });
            }
        }
        out
    }

    /// A folder name for the run: condition, strength and seed.
    pub fn folder_name(&self) -> String {
        let condition = serde_json::to_value(self.condition)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        format!("{condition}-a{}-seed{}", self.strength, self.seed)
    }

    /// Writes `config.json` in `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::file(dir.display(), e.to_string()))?;
        write_atomic(&RunDir(dir).config(), text.as_bytes())
    }

    /// Reads `config.json` from `dir`, its input paths resolved as [`stored_input`] says.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = RunDir(dir).config();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut config: RunConfig = serde_json::from_str(&text)
            .map_err(|e| Error::file(path.display(), format!("not a run configuration: {e}")))?;
        config.data = stored_input(&config.data, dir);
        config.images = stored_input(&config.images, dir);
        config.target = config.target.map(|t| stored_input(&t, dir));
        Ok(config)
    }

    /// The configuration with its input paths absolute, as a new run stores them (see
    /// [`absolute_input`]; `workspace` joins the sample-data search).
    pub fn with_absolute_inputs(mut self, workspace: Option<&Path>) -> Self {
        self.data = absolute_input(&self.data, workspace);
        self.images = absolute_input(&self.images, workspace);
        self.target = self.target.map(|t| absolute_input(&t, workspace));
        self
    }

    /// Fails, naming the run in `dir`, when its data set is no longer where its configuration
    /// says (moved or deleted since it was trained).
    pub fn check_data(&self, dir: &Path) -> Result<()> {
        if self.data.exists() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "run {}: its data set {} is not there any more (moved or deleted?); put it back or \
             edit \"data\" in {}",
            dir.display(),
            self.data.display(),
            RunDir(dir).config().display()
        )))
    }
}
