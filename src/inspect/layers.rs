//! The network side of an inspection: a run's per-layer similarity matrices (Eq. 9, cosine of
//! batch-centred features, evaluation-mode batch norm) on a set of images, the pixel baseline,
//! the feature maps of one image, the stem's kernels and per-layer weight norms.

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::nn::layer_similarity::layer_similarity;
use crate::runs::checkpoint;
use crate::similarity::matrix::SimilarityMatrix;
use crate::train::classifier_model::{checkpoint_path, load_classifier, Classifier};

/// Which conv layers are inspected.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LayerChoice {
    /// The run's tapped layers (those the similarity loss pulls).
    #[default]
    Taps,
    /// Every conv layer.
    All,
}

/// One layer's similarity matrix.
#[derive(Debug, Clone)]
pub struct LayerMatrix {
    /// Conv layer, counted from 1 as taps are.
    pub layer: usize,
    /// torchvision's name.
    pub name: String,
    /// Activation size (channels, height, width).
    pub size: (usize, usize, usize),
    /// Eq. 9 over the images.
    pub matrix: SimilarityMatrix,
}

/// Images per forward pass.
const CHUNK: usize = 100;

/// A run's network, ready to tap the chosen layers.
pub struct TappedRun {
    /// The frozen network.
    pub classifier: Classifier,
    /// The tapped conv layers, ascending.
    pub layers: Vec<usize>,
}

impl TappedRun {
    /// Loads the run in `dir` tapping `choice`'s layers.
    pub fn load(dir: &std::path::Path, choice: LayerChoice, device: &Device) -> Result<Self> {
        let mut classifier = load_classifier(dir, device)?;
        let config = classifier.net.config().clone();
        let mut layers = match choice {
            LayerChoice::Taps => config.taps.clone(),
            LayerChoice::All => (1..=config.depth.conv_layers()).collect(),
        };
        layers.sort_unstable();
        layers.dedup();
        classifier.net = classifier.net.with_taps(layers.clone())?;
        Ok(TappedRun { classifier, layers })
    }

    /// The activations (B, C, H, W) of `pixels` (each H x W on [0, 1]) at every tapped layer.
    pub fn activations(
        &self,
        pixels: &[Vec<f32>],
        shape: (usize, usize),
        device: &Device,
    ) -> Result<Vec<Tensor>> {
        let mut per_chunk: Vec<Vec<Tensor>> = Vec::new();
        for chunk in pixels.chunks(CHUNK) {
            let x = images_tensor(chunk, shape, device)?;
            per_chunk.push(self.classifier.taps(&x)?);
        }
        (0..self.layers.len())
            .map(|l| {
                let parts: Vec<&Tensor> = per_chunk.iter().map(|c| &c[l]).collect();
                Ok(Tensor::cat(&parts, 0)?)
            })
            .collect()
    }

    /// Each tapped layer's similarity matrix over `pixels`.
    pub fn layer_matrices(
        &self,
        pixels: &[Vec<f32>],
        shape: (usize, usize),
        device: &Device,
    ) -> Result<Vec<LayerMatrix>> {
        let acts = self.activations(pixels, shape, device)?;
        self.layers
            .iter()
            .zip(acts)
            .map(|(&layer, a)| {
                let (_, c, h, w) = a.dims4()?;
                Ok(LayerMatrix {
                    layer,
                    name: self.classifier.net.conv_name(layer),
                    size: (c, h, w),
                    matrix: matrix_of(&layer_similarity(&a)?)?,
                })
            })
            .collect()
    }
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

/// The pixel baseline: Eq. 9 over the raw pixels.
pub fn pixel_matrix(
    pixels: &[Vec<f32>],
    shape: (usize, usize),
    device: &Device,
) -> Result<SimilarityMatrix> {
    matrix_of(&layer_similarity(&images_tensor(pixels, shape, device)?)?)
}

/// A conv layer's weights in the checkpoint: its name and the Frobenius norm of its kernels.
#[derive(Debug, Clone, Serialize)]
pub struct WeightNorm {
    /// Parameter name (torchvision's).
    pub name: String,
    /// sqrt of the sum of squared kernel entries.
    pub norm: f64,
    /// Kernels (out, in, kh, kw).
    pub shape: Vec<usize>,
}

/// The conv kernels' norms of the run in `dir`, in the network's order.
pub fn weight_norms(dir: &std::path::Path) -> Result<Vec<WeightNorm>> {
    let path = checkpoint_path(dir);
    let tensors = checkpoint::load(&path, &Device::Cpu)?;
    let mut out: Vec<WeightNorm> = tensors
        .iter()
        .filter(|(k, t)| k.ends_with(".weight") && t.rank() == 4 && !k.contains("downsample"))
        .map(|(k, t)| {
            Ok(WeightNorm {
                name: k.trim_end_matches(".weight").to_string(),
                norm: t.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64,
                shape: t.dims().to_vec(),
            })
        })
        .collect::<Result<_>>()?;
    // conv1 first, then layer1.0.conv1, ..., as the layers run.
    out.sort_by_key(|w| (w.name != "conv1", w.name.clone()));
    Ok(out)
}
