//! The network side of an inspection: a network's per-layer similarity matrices (Eq. 9, cosine
//! of batch-centred features) on a set of images, the pixel baseline, the feature maps of one
//! image, the first layer's kernels and per-layer weight norms. A network is a trained run's
//! ResNet (batch norm by its running statistics, or as its similarity pass normalised the scan
//! images) or a frozen torchvision VGG read from a safetensors file.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::nn::kernels::batch_norm::BnMode;
use crate::nn::kernels::layer_similarity::layer_similarity;
use crate::nn::models::vgg::Vgg;
use crate::runs::classifier::{load_classifier, Classifier};
use crate::runs::store::RunInfo;
use crate::similarity::matrix::SimilarityMatrix;
use crate::train::classifier::similarity_pass_mode;

/// Which conv layers are inspected.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LayerChoice {
    /// A run's tapped layers (those the similarity loss pulls); a VGG's first conv of each
    /// block (conv1_1, conv2_1, ...).
    #[default]
    Taps,
    /// Every conv layer.
    All,
}

/// How a run's batch norm normalises the inspected images.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LayerBn {
    /// By the running statistics, as the network classifies (evaluation mode).
    #[default]
    Eval,
    /// As the run's similarity pass normalised its scan images: by the statistics of the
    /// images themselves (in chunks of at most 100) under the default rule, by the running
    /// statistics for runs trained with `--bn-statistics similarity-eval`.
    AsLoss,
}

impl LayerBn {
    /// How reports say it.
    pub fn describe(self) -> String {
        match self {
            LayerBn::Eval => "batch norm by the running statistics (evaluation mode)".into(),
            LayerBn::AsLoss => format!(
                "batch norm as each run's similarity pass normalised the scan images (the \
                 images' own statistics, in chunks of at most {CHUNK}, under the default rule)"
            ),
        }
    }
}

/// One layer's similarity matrix.
#[derive(Debug, Clone)]
pub struct LayerMatrix {
    /// Conv layer, counted from 1 in network order, as taps are.
    pub layer: usize,
    /// torchvision's name (`layer2.0.conv1`), or the VGG papers' (`conv3_1`).
    pub name: String,
    /// Activation size (channels, height, width).
    pub size: (usize, usize, usize),
    /// Eq. 9 over the images.
    pub matrix: SimilarityMatrix,
}

/// Images per forward pass.
const CHUNK: usize = 100;

/// What a network is, as an inspection reports it.
#[derive(Debug, Clone)]
pub struct NetworkAbout {
    /// The run folder or the VGG weights file.
    pub path: PathBuf,
    /// Short name: the run's folder name or the weights file's without its extension.
    pub name: String,
    /// Condition, strength and seed of a run; depth and "frozen" of a VGG.
    pub label: String,
    /// A run's tapped layers (what the similarity loss pulls); none for a VGG.
    pub taps: Vec<usize>,
    /// A run's final layer weights gamma, one per tap (none before its first logged step).
    pub gamma: Option<Vec<f64>>,
}

/// The network behind a [`TappedNetwork`].
enum Net {
    /// A run's ResNet, tapping the chosen layers, with the batch-norm mode of its similarity
    /// pass.
    ResNet(Classifier, BnMode),
    /// A frozen VGG's conv layers.
    Vgg(Vgg),
}

/// A network ready to read the chosen conv layers.
pub struct TappedNetwork {
    net: Net,
    /// The read conv layers, ascending.
    pub layers: Vec<usize>,
    /// What it is.
    pub about: NetworkAbout,
}

impl TappedNetwork {
    /// Loads the run folder or VGG weights file `path`, reading `choice`'s layers.
    pub fn load(path: &Path, choice: LayerChoice, device: &Device) -> Result<Self> {
        if path.is_file() {
            Self::load_vgg(path, choice, device)
        } else if path.is_dir() {
            Self::load_run(path, choice, device)
        } else {
            Err(Error::file(
                path.display(),
                "no such run folder or VGG weights file",
            ))
        }
    }

    fn load_run(dir: &Path, choice: LayerChoice, device: &Device) -> Result<Self> {
        let info = RunInfo::read(dir)?;
        let mut classifier = load_classifier(dir, device)?;
        let config = classifier.net.config().clone();
        let layers = sorted(match choice {
            LayerChoice::Taps => config.taps.clone(),
            LayerChoice::All => (1..=config.depth.conv_layers()).collect(),
        });
        classifier.net = classifier.net.with_taps(layers.clone())?;
        // A pass that would move the running statistics reads them here without moving them.
        let loss_mode = match similarity_pass_mode(info.config.bn_statistics) {
            BnMode::Eval => BnMode::Eval,
            BnMode::Train | BnMode::BatchOnly | BnMode::Collect => BnMode::BatchOnly,
        };
        let about = NetworkAbout {
            path: dir.to_path_buf(),
            name: info.name(),
            label: format!(
                "{} (a {}, seed {})",
                info.config.condition.label(),
                info.config.strength,
                info.config.seed
            ),
            taps: config.taps,
            gamma: info.steps().last().map(|s| s.3.clone()),
        };
        Ok(TappedNetwork {
            net: Net::ResNet(classifier, loss_mode),
            layers,
            about,
        })
    }

    fn load_vgg(path: &Path, choice: LayerChoice, device: &Device) -> Result<Self> {
        let vgg = Vgg::load_all(path, device)?;
        let layers = match choice {
            LayerChoice::Taps => vgg.block_starts(),
            LayerChoice::All => (1..=vgg.conv_layers()).collect(),
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let about = NetworkAbout {
            path: path.to_path_buf(),
            label: format!("{} {name} (frozen)", vgg.depth().label()),
            name,
            taps: Vec::new(),
            gamma: None,
        };
        Ok(TappedNetwork {
            net: Net::Vgg(vgg),
            layers,
            about,
        })
    }

    /// The activations (B, C, H, W) at every read layer of (B, 1, H, W) images on [0, 1].
    pub fn taps(&self, images: &Tensor, bn: LayerBn) -> Result<Vec<Tensor>> {
        match &self.net {
            Net::ResNet(c, loss_mode) => c.taps_in(
                images,
                match bn {
                    LayerBn::Eval => BnMode::Eval,
                    LayerBn::AsLoss => *loss_mode,
                },
            ),
            Net::Vgg(v) => v.conv_activations(images, &self.layers),
        }
    }

    /// The name of conv layer `layer` (counted from 1).
    pub fn layer_name(&self, layer: usize) -> String {
        match &self.net {
            Net::ResNet(c, _) => c.net.conv_name(layer),
            Net::Vgg(v) => v
                .convs()
                .nth(layer.saturating_sub(1))
                .map(|(name, _)| name)
                .unwrap_or_else(|| format!("conv{layer}")),
        }
    }

    /// The first conv layer's kernels as they act on the gray images, (O, kh, kw) on the CPU.
    pub fn stem_kernels(&self) -> Result<Tensor> {
        let k = match &self.net {
            // The ResNet's stem sees one (gray) channel: (O, 1, 3, 3).
            Net::ResNet(c, _) => c.net.stem_kernels().squeeze(1)?,
            Net::Vgg(v) => v.gray_stem_kernels()?,
        };
        Ok(k.to_device(&Device::Cpu)?)
    }

    /// Every conv layer's kernel norm, in network order (a ResNet's shortcut convs left out).
    pub fn weight_norms(&self) -> Result<Vec<WeightNorm>> {
        match &self.net {
            Net::ResNet(c, _) => c
                .net
                .conv_kernels()
                .into_iter()
                .map(|(name, w)| WeightNorm::of(name, w))
                .collect(),
            Net::Vgg(v) => v
                .convs()
                .map(|(name, conv)| WeightNorm::of(name, &conv.weight))
                .collect(),
        }
    }

    /// The activations (n, C, H, W) at every read layer of `pixels` (n images of `shape` on
    /// [0, 1]), passed in near-equal chunks of at most [`CHUNK`] images (so that no chunk whose
    /// own statistics normalise it is a lone image left over).
    pub fn activations(
        &self,
        pixels: &[Vec<f32>],
        shape: (usize, usize),
        bn: LayerBn,
        device: &Device,
    ) -> Result<Vec<Tensor>> {
        let size = pixels
            .len()
            .div_ceil(pixels.len().div_ceil(CHUNK).max(1))
            .max(1);
        let mut per_chunk: Vec<Vec<Tensor>> = Vec::new();
        for chunk in pixels.chunks(size) {
            per_chunk.push(self.taps(&images_tensor(chunk, shape, device)?, bn)?);
        }
        (0..self.layers.len())
            .map(|l| {
                let parts: Vec<&Tensor> = per_chunk.iter().map(|c| &c[l]).collect();
                Ok(Tensor::cat(&parts, 0)?)
            })
            .collect()
    }

    /// Each read layer's activation size and similarity matrix over `pixels` (n images of
    /// `shape` on [0, 1]).
    pub fn layer_matrices(
        &self,
        pixels: &[Vec<f32>],
        shape: (usize, usize),
        bn: LayerBn,
        device: &Device,
    ) -> Result<Vec<LayerMatrix>> {
        let acts = self.activations(pixels, shape, bn, device)?;
        self.layers
            .iter()
            .zip(acts)
            .map(|(&layer, a)| {
                let (_, c, h, w) = a.dims4()?;
                Ok(LayerMatrix {
                    layer,
                    name: self.layer_name(layer),
                    size: (c, h, w),
                    matrix: matrix_of(&layer_similarity(&a)?)?,
                })
            })
            .collect()
    }
}

/// `layers` ascending, without repeats.
fn sorted(mut layers: Vec<usize>) -> Vec<usize> {
    layers.sort_unstable();
    layers.dedup();
    layers
}

/// (n, 1, H, W) on `device` from n images of `shape`.
pub fn images_tensor(
    pixels: &[Vec<f32>],
    shape: (usize, usize),
    device: &Device,
) -> Result<Tensor> {
    let (h, w) = shape;
    if let Some(bad) = pixels.iter().position(|p| p.len() != h * w) {
        return Err(Error::Config(format!(
            "image {bad} has {} pixels, not {h} x {w}",
            pixels[bad].len()
        )));
    }
    Ok(Tensor::from_vec(
        pixels.concat(),
        (pixels.len(), 1, h, w),
        device,
    )?)
}

fn matrix_of(s: &Tensor) -> Result<SimilarityMatrix> {
    let n = s.dim(0)?;
    Ok(SimilarityMatrix {
        n,
        values: s.flatten_all()?.to_vec1::<f32>()?,
    })
}

/// A conv layer's weights: its name and the Frobenius norm of its kernels.
#[derive(Debug, Clone, Serialize)]
pub struct WeightNorm {
    /// Layer name (torchvision's, or `conv3_1` for a VGG).
    pub name: String,
    /// sqrt of the sum of squared kernel entries.
    pub norm: f64,
    /// Kernels (out, in, kh, kw).
    pub shape: Vec<usize>,
}

impl WeightNorm {
    fn of(name: String, kernels: &Tensor) -> Result<Self> {
        Ok(WeightNorm {
            name,
            norm: kernels.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64,
            shape: kernels.dims().to_vec(),
        })
    }
}
