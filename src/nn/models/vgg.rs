//! torchvision's VGG16 and VGG19 feature extractors (`features`, no classifier), frozen, with
//! weights read from a safetensors file of torchvision's state dict
//! (`scripts/vgg_to_safetensors.py` converts a `.pth`): the paper's Feature control regularises
//! towards the similarity of a pretrained VGG19's conv3_1 features, and the Inspect view reads
//! any of its conv layers.
//!
//! Layers are named as the VGG papers and style-transfer code do (`conv3_1` is the first conv
//! of the third block, its activation after the ReLU; `pool3` the block's max-pool) or by
//! torchvision's index into `features` (`features.10`, the raw conv output). Gray images are
//! repeated into the three channels and normalised by ImageNet's mean and standard deviation,
//! at their own size.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::nn::checkpoint;
use crate::nn::kernels::conv::{Conv2d, Conv2dConfig};

/// ImageNet's per-channel mean and standard deviation (torchvision's normalisation).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The two depths torchvision ships with pretrained weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggDepth {
    /// 13 conv layers.
    Vgg16,
    /// 16 conv layers.
    Vgg19,
}

impl VggDepth {
    /// Conv layers per block.
    fn blocks(self) -> [usize; 5] {
        match self {
            VggDepth::Vgg16 => [2, 2, 3, 3, 3],
            VggDepth::Vgg19 => [2, 2, 4, 4, 4],
        }
    }

    /// "VGG16" or "VGG19".
    pub fn label(self) -> &'static str {
        match self {
            VggDepth::Vgg16 => "VGG16",
            VggDepth::Vgg19 => "VGG19",
        }
    }
}

/// One step of `features`.
#[derive(Debug, Clone)]
enum Step {
    Conv {
        block: usize,
        k: usize,
        conv: Conv2d,
    },
    Relu {
        block: usize,
        k: usize,
    },
    Pool {
        block: usize,
    },
}

/// A VGG's feature layers up to a chosen one.
pub struct Vgg {
    depth: VggDepth,
    steps: Vec<Step>,
}

/// The torchvision `features` layout: (index, step) without weights, for naming.
fn layout(depth: VggDepth) -> Vec<(usize, &'static str, usize, usize)> {
    let mut out = Vec::new();
    let mut index = 0;
    for (b, &convs) in depth.blocks().iter().enumerate() {
        for k in 1..=convs {
            out.push((index, "conv", b + 1, k));
            out.push((index + 1, "relu", b + 1, k));
            index += 2;
        }
        out.push((index, "pool", b + 1, 0));
        index += 1;
    }
    out
}

/// The position in `features` after which `layer` is read: `conv3_1` (after its ReLU),
/// `relu3_1`, `pool3` or `features.N`.
fn position(depth: VggDepth, layer: &str) -> Result<usize> {
    let steps = layout(depth);
    let found = if let Some(i) = layer.strip_prefix("features.") {
        i.parse::<usize>().ok().filter(|&i| i < steps.len())
    } else {
        steps.iter().find_map(|&(i, kind, b, k)| {
            let named = match kind {
                "relu" => layer == format!("conv{b}_{k}") || layer == format!("relu{b}_{k}"),
                "pool" => layer == format!("pool{b}"),
                _ => false,
            };
            named.then_some(i)
        })
    };
    found.ok_or_else(|| {
        Error::Config(format!(
            "{layer:?} is not a VGG layer; use conv<block>_<k> (e.g. conv3_1, read after its \
             ReLU), relu<block>_<k>, pool<block> or features.<index> (0-{})",
            steps.len() - 1
        ))
    })
}

impl Vgg {
    /// Loads the layers up to `layer` from torchvision's state dict in `path`; the depth is
    /// told by the file's largest `features` index (VGG16 has 31 steps, VGG19 37), or by how
    /// many conv layers it holds when it was saved only up to some layer.
    pub fn load(path: &Path, layer: &str, device: &Device) -> Result<(Self, VggDepth)> {
        let tensors = checkpoint::load(path, device)?;
        let depth = depth_of(&tensors, path)?;
        let last = position(depth, layer)?;
        let vgg = Self::build(tensors, depth, last, path, device)?;
        Ok((vgg, depth))
    }

    /// Loads every conv layer the file in `path` holds, up to the ReLU of its last one.
    pub fn load_all(path: &Path, device: &Device) -> Result<Self> {
        let tensors = checkpoint::load(path, device)?;
        let depth = depth_of(&tensors, path)?;
        let last = layout(depth)
            .into_iter()
            .filter(|s| s.1 == "conv" && tensors.contains_key(&format!("features.{}.weight", s.0)))
            .map(|s| s.0 + 1)
            .max()
            .unwrap_or(0);
        Self::build(tensors, depth, last, path, device)
    }

    /// The steps of `depth`'s layout up to `last`, weights from `tensors` (read from `path`).
    fn build(
        tensors: HashMap<String, Tensor>,
        depth: VggDepth,
        last: usize,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let mut steps = Vec::new();
        let mut inputs = 3;
        for (i, kind, block, k) in layout(depth).into_iter().take(last + 1) {
            steps.push(match kind {
                "conv" => {
                    let outputs = 64usize << (block - 1).min(3);
                    let config = Conv2dConfig {
                        stride: 1,
                        padding: 1,
                        bias: true,
                        init: candle_nn::Init::Const(0.0),
                    };
                    let conv =
                        Conv2d::new(inputs, outputs, 3, config, vb.pp(format!("features.{i}")))
                            .map_err(|e| {
                                Error::file(
                                    path.display(),
                                    format!("features.{i} (conv{block}_{k}): {e}"),
                                )
                            })?;
                    inputs = outputs;
                    Step::Conv { block, k, conv }
                }
                "relu" => Step::Relu { block, k },
                _ => Step::Pool { block },
            });
        }
        Ok(Vgg { depth, steps })
    }

    /// VGG16 or VGG19.
    pub fn depth(&self) -> VggDepth {
        self.depth
    }

    /// The features (B, C, H, W) of gray (B, 1, H, W) images on [0, 1] at the chosen layer.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let mut h = normalised(images)?;
        for step in &self.steps {
            h = apply(step, &h)?;
        }
        Ok(h)
    }

    /// The activations (B, C, H, W) after the ReLU of each conv layer in `convs` (counted from
    /// 1 in network order, ascending), of gray (B, 1, H, W) images on [0, 1]; the pass stops
    /// after the last of them.
    pub fn conv_activations(&self, images: &Tensor, convs: &[usize]) -> Result<Vec<Tensor>> {
        let last = convs.iter().copied().max().unwrap_or(0);
        if last > self.conv_layers() {
            return Err(Error::Config(format!(
                "conv layer {last} is beyond this {}'s {} loaded conv layers",
                self.depth.label(),
                self.conv_layers()
            )));
        }
        let mut out = Vec::with_capacity(convs.len());
        let mut h = normalised(images)?;
        let mut conv = 0;
        for step in &self.steps {
            if conv == last {
                break;
            }
            h = apply(step, &h)?;
            if let Step::Relu { .. } = step {
                conv += 1;
                if convs.contains(&conv) {
                    out.push(h.clone());
                }
            }
        }
        Ok(out)
    }

    /// The loaded conv layers with their names (`conv3_1`), in network order.
    pub fn convs(&self) -> impl Iterator<Item = (String, &Conv2d)> {
        self.steps.iter().filter_map(|s| match s {
            Step::Conv { block, k, conv } => Some((format!("conv{block}_{k}"), conv)),
            _ => None,
        })
    }

    /// How many conv layers are loaded.
    pub fn conv_layers(&self) -> usize {
        self.convs().count()
    }

    /// The first conv layer of each loaded block (`conv1_1`, `conv2_1`, ...: the layers
    /// style-transfer work reads, conv3_1 the paper's Feature layer), counted from 1.
    pub fn block_starts(&self) -> Vec<usize> {
        self.convs()
            .enumerate()
            .filter(|(_, (name, _))| name.ends_with("_1"))
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// The first conv layer's kernels as they act on a gray image: the images are repeated
    /// into the three channels and each divided by its standard deviation, so a kernel's
    /// effect is the sum over channels of its weights over that deviation: (O, 3, 3).
    pub fn gray_stem_kernels(&self) -> Result<Tensor> {
        let (_, conv) = self
            .convs()
            .next()
            .ok_or_else(|| Error::Config("this VGG holds no conv layer".into()))?;
        let w = &conv.weight;
        let std = Tensor::new(&IMAGENET_STD, w.device())?.reshape((1, 3, 1, 1))?;
        Ok(w.broadcast_div(&std)?.sum(1)?)
    }

    /// The chosen layer's name (`conv3_1` style).
    pub fn layer_name(&self) -> String {
        match self.steps.last() {
            Some(Step::Relu { block, k }) => format!("conv{block}_{k}"),
            Some(Step::Conv { block, k, .. }) => format!("conv{block}_{k} (before ReLU)"),
            Some(Step::Pool { block }) => format!("pool{block}"),
            None => String::new(),
        }
    }
}

/// Gray (B, 1, H, W) images on [0, 1] as ImageNet-normalised RGB.
fn normalised(images: &Tensor) -> Result<Tensor> {
    let dev = images.device();
    let rgb = images.repeat((1, 3, 1, 1))?;
    let mean = Tensor::new(&IMAGENET_MEAN, dev)?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&IMAGENET_STD, dev)?.reshape((1, 3, 1, 1))?;
    Ok(rgb.broadcast_sub(&mean)?.broadcast_div(&std)?)
}

/// One step of `features` on `h`.
fn apply(step: &Step, h: &Tensor) -> Result<Tensor> {
    Ok(match step {
        Step::Conv { conv, .. } => conv.forward(h)?,
        Step::Relu { .. } => h.relu()?,
        Step::Pool { .. } => h.max_pool2d(2)?,
    })
}

/// VGG16 or VGG19, from the `features.N.weight` entries of a state dict.
fn depth_of(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<VggDepth> {
    let indices: Vec<usize> = tensors
        .keys()
        .filter_map(|k| {
            k.strip_prefix("features.")?
                .strip_suffix(".weight")?
                .parse()
                .ok()
        })
        .collect();
    let is = |d: VggDepth| {
        let convs: Vec<usize> = layout(d)
            .iter()
            .filter(|s| s.1 == "conv")
            .map(|s| s.0)
            .collect();
        !indices.is_empty() && indices.iter().all(|i| convs.contains(i))
    };
    // A file cut after conv3_3 or earlier fits both layouts, which compute the same layers
    // up to there.
    match (is(VggDepth::Vgg16), is(VggDepth::Vgg19)) {
        (true, false) => Ok(VggDepth::Vgg16),
        (_, true) => Ok(VggDepth::Vgg19),
        _ => Err(Error::file(
            path.display(),
            "not a torchvision VGG16 or VGG19 state dict (no features.N.weight of either layout)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_follow_torchvision_indices() {
        assert_eq!(position(VggDepth::Vgg19, "conv3_1").unwrap(), 11);
        assert_eq!(position(VggDepth::Vgg19, "features.10").unwrap(), 10);
        assert_eq!(position(VggDepth::Vgg19, "pool3").unwrap(), 18);
        assert_eq!(position(VggDepth::Vgg16, "pool3").unwrap(), 16);
        assert_eq!(position(VggDepth::Vgg19, "conv5_4").unwrap(), 35);
        assert_eq!(layout(VggDepth::Vgg19).len(), 37);
        assert_eq!(layout(VggDepth::Vgg16).len(), 31);
        let e = position(VggDepth::Vgg16, "conv5_4")
            .unwrap_err()
            .to_string();
        assert!(e.contains("conv5_4") && e.contains("0-30"), "{e}");
    }
}
