//! ResNet18 and ResNet34 in their CIFAR form (docs/method.md section 7): a 3 x 3 stem without
//! max-pooling, four stages of basic blocks, global average pooling and a
//! linear classifier; one input channel; a width multiplier for quick CPU
//! demos. Fully convolutional up to the pooling, so the same core takes the
//! 36 x 64 scan images. Feature taps return chosen conv layers' activations.
//! Variable names follow torchvision's `resnet18` (`conv1`, `bn1`,
//! `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`). The Blur control puts a fixed Gaussian blur
//! in front of the stem (`nn::blur`), so training, evaluation, noise and every attack see it.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::kernels::add_relu::add_relu;
use crate::nn::kernels::batch_norm::{BatchNorm2d, BnMode};
use crate::nn::kernels::conv::{Conv2d, Conv2dConfig};
use crate::nn::models::blur::Blur;

/// The depth of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    /// Two basic blocks per stage (17 conv layers).
    Resnet18,
    /// 3, 4, 6, 3 basic blocks per stage (33 conv layers).
    Resnet34,
}

impl Depth {
    /// Basic blocks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Depth::Resnet18 => [2, 2, 2, 2],
            Depth::Resnet34 => [3, 4, 6, 3],
        }
    }

    /// Number of conv layers on the main path (the stem and two per block).
    pub fn conv_layers(self) -> usize {
        1 + 2 * self.blocks().iter().sum::<usize>()
    }

    /// The default taps: the stem and the last conv layer of each stage (ResNet18: 1, 5, 9, 13, 17,
    /// the paper's layers).
    pub fn default_taps(self) -> Vec<usize> {
        let mut taps = vec![1];
        let mut conv = 1;
        for b in self.blocks() {
            conv += 2 * b;
            taps.push(conv);
        }
        taps
    }
}

/// What network to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// ResNet18 or ResNet34.
    pub depth: Depth,
    /// Channel multiplier: the first stage has `round(64 * width)` channels.
    pub width: f64,
    /// Number of classes.
    pub classes: usize,
    /// Conv layers (1-based, stem = 1) whose activations are tapped.
    pub taps: Vec<usize>,
    /// A fixed Gaussian blur of this width (pixels) in front of the stem (the Blur control).
    #[serde(default)]
    pub blur: Option<f64>,
}

impl ResNetConfig {
    /// Channels of stage `s` (0-based).
    pub fn channels(&self, s: usize) -> usize {
        ((64.0 * self.width).round() as usize).max(1) << s
    }

    /// Checks the width, class count and taps.
    pub fn validate(&self) -> Result<()> {
        let n = self.depth.conv_layers();
        if !(self.width > 0.0 && self.width <= 4.0) {
            return Err(Error::Config(format!(
                "width multiplier {} is outside (0, 4]",
                self.width
            )));
        }
        if self.classes < 2 {
            return Err(Error::Config(
                "a classifier needs at least two classes".into(),
            ));
        }
        if self.taps.is_empty() || self.taps.iter().any(|&t| t == 0 || t > n) {
            return Err(Error::Config(format!(
                "taps {:?}: each must be a conv layer between 1 and {n}",
                self.taps
            )));
        }
        Ok(())
    }
}

/// A basic block: two 3 x 3 convolutions with a residual connection.
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    downsample: Option<(Conv2d, BatchNorm2d)>,
}

impl BasicBlock {
    fn new(inputs: usize, outputs: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let downsample = if stride != 1 || inputs != outputs {
            Some((
                Conv2d::new(
                    inputs,
                    outputs,
                    1,
                    Conv2dConfig::kaiming(stride, 0),
                    vb.pp("downsample.0"),
                )?,
                BatchNorm2d::new(outputs, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: Conv2d::new(
                inputs,
                outputs,
                3,
                Conv2dConfig::kaiming(stride, 1),
                vb.pp("conv1"),
            )?,
            bn1: BatchNorm2d::new(outputs, vb.pp("bn1"))?,
            conv2: Conv2d::new(
                outputs,
                outputs,
                3,
                Conv2dConfig::kaiming(1, 1),
                vb.pp("conv2"),
            )?,
            bn2: BatchNorm2d::new(outputs, vb.pp("bn2"))?,
            downsample,
        })
    }

    /// The block's two activations: after its first conv, and its output.
    fn forward(&self, x: &Tensor, mode: BnMode) -> Result<(Tensor, Tensor)> {
        let a = self.bn1.forward_relu(&self.conv1.forward(x)?, mode)?;
        let y = self.bn2.forward_mode(&self.conv2.forward(&a)?, mode)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_mode(&conv.forward(x)?, mode)?,
            None => x.clone(),
        };
        Ok((a, add_relu(&y, &shortcut)?))
    }
}

/// A CIFAR ResNet with feature taps.
pub struct ResNet {
    config: ResNetConfig,
    blur: Option<Blur>,
    stem: (Conv2d, BatchNorm2d),
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet {
    /// Builds the network's variables in `vb`.
    pub fn new(config: &ResNetConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let c0 = config.channels(0);
        let stem = (
            Conv2d::new(1, c0, 3, Conv2dConfig::kaiming(1, 1), vb.pp("conv1"))?,
            BatchNorm2d::new(c0, vb.pp("bn1"))?,
        );
        let mut blocks = Vec::new();
        let mut inputs = c0;
        for (s, &count) in config.depth.blocks().iter().enumerate() {
            let outputs = config.channels(s);
            for b in 0..count {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let vbb = vb.pp(format!("layer{}.{b}", s + 1));
                blocks.push(BasicBlock::new(inputs, outputs, stride, vbb)?);
                inputs = outputs;
            }
        }
        let fc = linear(inputs, config.classes, vb.pp("fc"))?;
        Ok(ResNet {
            config: config.clone(),
            blur: config.blur.map(Blur::new).transpose()?,
            stem,
            blocks,
            fc,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The same network tapping the conv layers `taps` instead.
    pub fn with_taps(mut self, taps: Vec<usize>) -> Result<Self> {
        let mut config = self.config.clone();
        config.taps = taps;
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// torchvision's name of conv layer `conv` (1-based, as taps count): `conv1` for the stem,
    /// then `layer{stage}.{block}.conv1` (a block's first conv) and `.conv2` (the block's
    /// output, after the residual sum).
    pub fn conv_name(&self, conv: usize) -> String {
        if conv <= 1 {
            return "conv1".into();
        }
        let mut block = (conv - 2) / 2;
        for (s, &count) in self.config.depth.blocks().iter().enumerate() {
            if block < count {
                return format!("layer{}.{block}.conv{}", s + 1, 1 + (conv - 2) % 2);
            }
            block -= count;
        }
        format!("conv{conv}")
    }

    /// The stem's kernels (O, 1, 3, 3).
    pub fn stem_kernels(&self) -> &Tensor {
        &self.stem.0.weight
    }

    /// Every conv layer's kernels with its [`ResNet::conv_name`], in network order (the
    /// shortcuts' 1 x 1 convs, which no tap counts, left out).
    pub fn conv_kernels(&self) -> Vec<(String, &Tensor)> {
        let convs = std::iter::once(&self.stem.0)
            .chain(self.blocks.iter().flat_map(|b| [&b.conv1, &b.conv2]));
        convs
            .enumerate()
            .map(|(i, conv)| (self.conv_name(i + 1), &conv.weight))
            .collect()
    }

    /// Every batch norm, in network order (stem, then each block's, shortcut last).
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut out = vec![&self.stem.1];
        for b in &self.blocks {
            out.extend([&b.bn1, &b.bn2]);
            if let Some((_, bn)) = &b.downsample {
                out.push(bn);
            }
        }
        out
    }

    /// The class scores (B, classes) of (B, 1, H, W) images, batch norm in `mode`.
    pub fn logits(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let (logits, _) = self.run(x, mode, true)?;
        logits.ok_or_else(|| crate::Error::Config("the network returned no class scores".into()))
    }

    /// The tapped activations (B, C, H, W) of (B, 1, H, W) images in the order of the config's
    /// taps, batch norm in `mode` (the pass stops after the last tap).
    pub fn taps(&self, x: &Tensor, mode: BnMode) -> Result<Vec<Tensor>> {
        Ok(self.run(x, mode, false)?.1)
    }

    /// The forward pass: the class scores when `logits` is set, else the taps.
    fn run(&self, x: &Tensor, mode: BnMode, logits: bool) -> Result<(Option<Tensor>, Vec<Tensor>)> {
        let last_tap = self.config.taps.iter().copied().max().unwrap_or(0);
        let mut taps: Vec<(usize, Tensor)> = Vec::with_capacity(self.config.taps.len());
        let mut keep = |conv: usize, t: &Tensor| {
            if !logits && self.config.taps.contains(&conv) {
                taps.push((conv, t.clone()));
            }
        };
        let blurred;
        let x = match &self.blur {
            Some(blur) => {
                blurred = blur.forward(x)?;
                &blurred
            }
            None => x,
        };
        let (conv, bn) = &self.stem;
        let mut h = bn.forward_relu(&conv.forward(x)?, mode)?;
        keep(1, &h);
        for (b, block) in self.blocks.iter().enumerate() {
            if !logits && 1 + 2 * b >= last_tap {
                break;
            }
            let (a, y) = block.forward(&h, mode)?;
            keep(2 + 2 * b, &a);
            keep(3 + 2 * b, &y);
            h = y;
        }
        let logits = if logits {
            let pooled = h.mean((2, 3))?;
            Some(self.fc.forward(&pooled)?)
        } else {
            None
        };
        let taps = self
            .config
            .taps
            .iter()
            .filter_map(|t| taps.iter().find(|(c, _)| c == t).map(|(_, v)| v.clone()))
            .collect();
        Ok((logits, taps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn conv_layers_have_torchvisions_names() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let config = ResNetConfig {
            depth: Depth::Resnet18,
            width: 0.0625,
            classes: 10,
            taps: vec![1],
            blur: None,
        };
        let net = ResNet::new(&config, vb).unwrap();
        let names: Vec<String> = [1, 2, 3, 5, 6, 17].map(|c| net.conv_name(c)).to_vec();
        assert_eq!(
            names,
            [
                "conv1",
                "layer1.0.conv1",
                "layer1.0.conv2",
                "layer1.1.conv2",
                "layer2.0.conv1",
                "layer4.1.conv2"
            ]
        );
        let net = net.with_taps((1..=17).collect()).unwrap();
        assert_eq!(net.config().taps.len(), 17);
        assert!(net.with_taps(vec![18]).is_err());
    }

    #[test]
    fn default_taps_are_the_papers_layers() {
        assert_eq!(Depth::Resnet18.default_taps(), vec![1, 5, 9, 13, 17]);
        assert_eq!(Depth::Resnet18.conv_layers(), 17);
        assert_eq!(Depth::Resnet34.default_taps(), vec![1, 7, 15, 27, 33]);
    }

    #[test]
    fn shapes_names_and_taps() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let config = ResNetConfig {
            depth: Depth::Resnet18,
            width: 0.125,
            classes: 10,
            taps: vec![1, 5, 9, 13, 17],
            blur: None,
        };
        let net = ResNet::new(&config, vb).unwrap();
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        for n in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer4.1.bn2.bias",
            "fc.weight",
        ] {
            assert!(names.iter().any(|m| m == n), "{n} missing");
        }
        let x = Tensor::zeros((2, 1, 32, 32), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(net.logits(&x, BnMode::Eval).unwrap().dims(), &[2, 10]);
        let taps = net.taps(&x, BnMode::Eval).unwrap();
        let dims: Vec<Vec<usize>> = taps.iter().map(|t| t.dims().to_vec()).collect();
        assert_eq!(
            dims,
            vec![
                vec![2, 8, 32, 32],
                vec![2, 8, 32, 32],
                vec![2, 16, 16, 16],
                vec![2, 32, 8, 8],
                vec![2, 64, 4, 4]
            ]
        );
        // Scan-sized images go through the same core.
        let s = Tensor::zeros((3, 1, 36, 64), DType::F32, &Device::Cpu).unwrap();
        let taps = net.taps(&s, BnMode::Eval).unwrap();
        assert_eq!(taps[4].dims(), &[3, 64, 5, 8]);
    }
}
