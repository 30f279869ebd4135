//! The predictor's convolutional core (docs/method.md section 6): stacked convolution layers with
//! skip connections (each layer sees the outputs of all earlier layers), batch
//! norm and ELU. Its output is every layer's output stacked along channels.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::nn::kernels::batch_norm::BatchNorm2d;
use crate::nn::kernels::conv::{conv2d, Conv2d, Conv2dConfig};
use crate::nn::kernels::elu::elu;
use crate::nn::seeded_init::torch_default;

use crate::error::Result;

/// The core: `layers` blocks of conv, batch norm, ELU.
pub struct StackedCore {
    blocks: Vec<(Conv2d, BatchNorm2d)>,
}

impl StackedCore {
    /// A core with `channels` per layer; the first kernel is `input_kernel`, the others `hidden_kernel`.
    pub fn new(
        layers: usize,
        channels: usize,
        input_kernel: usize,
        hidden_kernel: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut blocks = Vec::with_capacity(layers);
        for l in 0..layers {
            let (inputs, k) = if l == 0 {
                (1, input_kernel)
            } else {
                (l * channels, hidden_kernel)
            };
            // PyTorch's default initialisation: Kaiming normal (the ResNet's) is 2.4 times wider,
            // and Adam's fixed step then moves these batch-normalised kernels 2.4 times less,
            // which left the sample scans' fits far from the truth after 30 epochs.
            let conv = Conv2d::new(
                inputs,
                channels,
                k,
                Conv2dConfig {
                    stride: 1,
                    padding: k / 2,
                    bias: true,
                    init: torch_default(inputs * k * k),
                },
                vb.pp(format!("core.layer{l}.conv")),
            )?;
            let bn = BatchNorm2d::new(channels, vb.pp(format!("core.layer{l}.norm")))?;
            blocks.push((conv, bn));
        }
        Ok(StackedCore { blocks })
    }

    /// Channels of the output: layers x channels.
    pub fn out_channels(&self) -> usize {
        self.blocks
            .iter()
            .map(|(c, _)| c.weight.dim(0).unwrap_or(0))
            .sum()
    }

    /// (B, 1, H, W) images to (B, layers * channels, H, W) features.
    pub fn forward(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.blocks.len());
        for (l, (conv, bn)) in self.blocks.iter().enumerate() {
            let input = if l == 0 {
                images.clone()
            } else {
                Tensor::cat(&outputs, 1)?
            };
            let y = elu(&bn.forward_t(&conv.forward(&input)?, train)?)?;
            outputs.push(y);
        }
        Ok(Tensor::cat(&outputs, 1)?)
    }

    /// The first layer's kernels (C, 1, k, k), for the smoothness penalty.
    pub fn input_kernels(&self) -> Option<&Tensor> {
        self.blocks.first().map(|(c, _)| &c.weight)
    }
}

/// Laplacian smoothness of kernels (C, 1, k, k): sum of squared Laplacians over sum of squares.
pub fn laplace_penalty(kernels: &Tensor) -> Result<Tensor> {
    let (c, i, k, _) = kernels.dims4()?;
    let lap = Tensor::new(
        &[[[[0f32, -1., 0.], [-1., 4., -1.], [0., -1., 0.]]]],
        kernels.device(),
    )?;
    let flat = kernels.reshape((c * i, 1, k, k))?;
    let filtered = conv2d(&flat, &lap, 1, 1)?;
    Ok((filtered.sqr()?.sum_all()? / (flat.sqr()?.sum_all()? + 1e-8)?)?)
}
