//! The predictive model of docs/method.md section 6: core, readout, shifter and modulator,
//! mapping an image (plus behaviour and pupil centre) to every neuron of a scan.

use std::sync::Mutex;

use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::kernels::elu::elu;
use crate::nn::models::factorized_readout::FactorizedReadout;
use crate::nn::models::gaussian_readout::GaussianReadout;
use crate::nn::models::stacked_core::{laplace_penalty, StackedCore};
use crate::nn::seeded_init::torch_linear;

/// Which readout maps the core's features to the neurons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReadoutKind {
    /// A learned position per neuron, sampled bilinearly.
    Gaussian,
    /// A spatial mask times a feature vector per neuron.
    Factorized,
}

/// The architecture (docs/method.md section 6 defaults: 3 layers, kernels 9 and 7; the paper uses 32-64 channels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct PredictorConfig {
    /// Channels per core layer.
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    /// Core layers.
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    /// Kernel size of the first layer.
    #[arg(long, default_value_t = 9)]
    pub input_kernel: usize,
    /// Kernel size of the other layers.
    #[arg(long, default_value_t = 7)]
    pub hidden_kernel: usize,
    /// Readout type.
    #[arg(long, value_enum, default_value_t = ReadoutKind::Gaussian)]
    pub readout: ReadoutKind,
    /// Learn a shift of the readout positions from the pupil centre.
    #[arg(long = "no-shifter", action = clap::ArgAction::SetFalse)]
    pub shifter: bool,
    /// Learn a gain per neuron from the behaviour.
    #[arg(long = "no-modulator", action = clap::ArgAction::SetFalse)]
    pub modulator: bool,
}

impl Default for PredictorConfig {
    fn default() -> Self {
        PredictorConfig {
            channels: 16,
            layers: 3,
            input_kernel: 9,
            hidden_kernel: 7,
            readout: ReadoutKind::Gaussian,
            shifter: true,
            modulator: true,
        }
    }
}

/// What a model was built for; a model only applies to data of this shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Neurons N.
    pub neurons: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Whether behaviour (3 values) is an input.
    pub behavior: bool,
    /// Whether the pupil centre (2 values) is an input.
    pub pupil: bool,
}

enum Readout {
    Gaussian(GaussianReadout),
    Factorized(FactorizedReadout),
}

/// Initial readout positions are uniform in +-this (of the [-1, 1] map).
const INIT_POSITION_RANGE: f64 = 0.5;
/// Initial spread of the Gaussian readout's training-time sampling (neuralpredictors' default; 0.4
/// learnt the sample scans' features markedly worse: median correlation with the noise-free
/// responses 0.24 against 0.31 after 25-30 epochs of the PyTorch reference).
const INIT_SIGMA: f64 = 0.1;

/// Hidden units of the shifter and modulator MLPs.
const SHIFTER_HIDDEN: usize = 5;
const MODULATOR_HIDDEN: usize = 10;

/// The model.
pub struct Predictor {
    /// Its architecture.
    pub config: PredictorConfig,
    /// What it was built for.
    pub shape: ModelShape,
    core: StackedCore,
    readout: Readout,
    shifter: Option<(Linear, Linear)>,
    modulator: Option<(Linear, Linear)>,
    /// Draws the Gaussian readout's training-time sampling noise.
    noise: Mutex<ChaCha8Rng>,
}

impl Predictor {
    /// Builds the model with its parameters in `vb`.
    pub fn new(config: &PredictorConfig, shape: ModelShape, vb: VarBuilder) -> Result<Self> {
        if config.layers == 0
            || config.channels == 0
            || config.input_kernel.is_multiple_of(2)
            || config.hidden_kernel.is_multiple_of(2)
        {
            return Err(Error::Config(format!(
                "predictor: need at least one layer and channel, and odd kernel sizes (got {config:?})"
            )));
        }
        let core = StackedCore::new(
            config.layers,
            config.channels,
            config.input_kernel,
            config.hidden_kernel,
            vb.clone(),
        )?;
        let c = core.out_channels();
        let readout = match config.readout {
            ReadoutKind::Gaussian => Readout::Gaussian(GaussianReadout::new(
                shape.neurons,
                c,
                INIT_POSITION_RANGE,
                INIT_SIGMA,
                vb.clone(),
            )?),
            ReadoutKind::Factorized => Readout::Factorized(FactorizedReadout::new(
                shape.neurons,
                c,
                (shape.height, shape.width),
                vb.clone(),
            )?),
        };
        let shifter = (config.shifter && shape.pupil && config.readout == ReadoutKind::Gaussian)
            .then(|| -> Result<_> {
                Ok((
                    torch_linear(2, SHIFTER_HIDDEN, vb.pp("shifter.0"))?,
                    torch_linear(SHIFTER_HIDDEN, 2, vb.pp("shifter.1"))?,
                ))
            })
            .transpose()?;
        let modulator = (config.modulator && shape.behavior)
            .then(|| -> Result<_> {
                Ok((
                    torch_linear(3, MODULATOR_HIDDEN, vb.pp("modulator.0"))?,
                    torch_linear(MODULATOR_HIDDEN, shape.neurons, vb.pp("modulator.1"))?,
                ))
            })
            .transpose()?;
        Ok(Predictor {
            config: config.clone(),
            shape,
            core,
            readout,
            shifter,
            modulator,
            noise: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
        })
    }

    /// Predicted (B, N) responses, positive (ELU + 1, times the modulator's gain).
    ///
    /// `images` (B, 1, H, W), `behavior` (B, 3) and `pupil` (B, 2), all normalised.
    pub fn forward(
        &self,
        images: &Tensor,
        behavior: Option<&Tensor>,
        pupil: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (_, _, h, w) = images.dims4()?;
        if (h, w) != (self.shape.height, self.shape.width) {
            return Err(Error::Config(format!(
                "the predictor was built for {} x {} images, not {h} x {w}",
                self.shape.height, self.shape.width
            )));
        }
        let features = self.core.forward(images, train)?;
        let linear_out = match &self.readout {
            Readout::Gaussian(r) => {
                let shift = match (&self.shifter, pupil) {
                    (Some((a, b)), Some(p)) => Some(b.forward(&a.forward(p)?.tanh()?)?.tanh()?),
                    _ => None,
                };
                let noise = if train {
                    Some(self.readout_noise(features.dim(0)?, features.device())?)
                } else {
                    None
                };
                r.forward(&features, shift.as_ref(), noise.as_ref())?
            }
            Readout::Factorized(r) => r.forward(&features)?,
        };
        let mut out = (elu(&linear_out)? + 1.0)?;
        if let (Some((a, b)), Some(beh)) = (&self.modulator, behavior) {
            let gain = (elu(&b.forward(&elu(&a.forward(beh)?)?)?)? + 1.0)?;
            out = (out * gain)?;
        }
        Ok(out)
    }

    /// Restarts the readout's sampling noise from `seed` (the trainer does so every epoch, so that a
    /// resumed fit draws what an unbroken one would).
    pub fn reseed_noise(&self, seed: u64) {
        if let Ok(mut rng) = self.noise.lock() {
            *rng = ChaCha8Rng::seed_from_u64(seed);
        }
    }

    /// (B, N, 2) standard normal draws.
    fn readout_noise(&self, b: usize, device: &candle_core::Device) -> Result<Tensor> {
        let count = b * self.shape.neurons * 2;
        let values: Vec<f32> = match self.noise.lock() {
            Ok(mut rng) => (0..count)
                .map(|_| StandardNormal.sample(&mut *rng))
                .collect(),
            Err(_) => vec![0.0; count],
        };
        Ok(Tensor::from_vec(
            values,
            (b, self.shape.neurons, 2),
            device,
        )?)
    }

    /// Mean absolute readout feature weight (the sparsity penalty).
    pub fn readout_l1(&self) -> Result<Tensor> {
        let f = match &self.readout {
            Readout::Gaussian(r) => &r.weights.features,
            Readout::Factorized(r) => &r.weights.features,
        };
        Ok(f.abs()?.mean_all()?)
    }

    /// Laplacian smoothness of the first layer's kernels (the core penalty).
    pub fn smoothness(&self) -> Result<Tensor> {
        match self.core.input_kernels() {
            Some(k) => laplace_penalty(k),
            None => Err(Error::Config("predictor has no core layers".into())),
        }
    }

    /// The learned readout positions (N, 2) in [-1, 1], for a Gaussian readout.
    pub fn readout_positions(&self) -> Option<Vec<[f32; 2]>> {
        match &self.readout {
            Readout::Gaussian(r) => r
                .positions
                .to_vec2::<f32>()
                .ok()
                .map(|v| v.into_iter().map(|p| [p[0], p[1]]).collect()),
            Readout::Factorized(_) => None,
        }
    }
}
