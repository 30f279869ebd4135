//! Inspecting networks against the brain: for each run and conv layer, the layer's similarity
//! matrix on the oracle images beside the neural one, their agreement (RSA, CKA, debiased CKA)
//! with bootstrap intervals, the noise ceiling of the neural matrix and the pixel baseline.
//! `neureg inspect` and the window's Inspect tab both call [`inspect`].

pub mod agreement;
pub mod layers;
pub mod neural;
pub mod write;

use std::path::PathBuf;

use candle_core::Device;
use rayon::prelude::*;

use crate::error::Result;
use crate::inspect::agreement::{bootstrap, Estimate};
use crate::inspect::layers::{pixel_matrix, LayerChoice, LayerMatrix, TappedRun};
use crate::inspect::neural::NeuralReference;
use crate::progress::Progress;
use crate::runs::store::RunInfo;
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::ordering::spectral_order;

/// What to inspect.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectRequest {
    /// Run folders.
    pub runs: Vec<PathBuf>,
    /// The tapped layers or every conv layer.
    pub layers: LayerChoice,
    /// Bootstrap resamples of the images per interval.
    pub resamples: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

/// One layer of one run against the neural matrix.
#[derive(Debug, Clone)]
pub struct LayerResult {
    /// The layer and its matrix.
    pub layer: LayerMatrix,
    /// Its agreement with the neural matrix.
    pub estimate: Estimate,
}

/// One run's layers.
#[derive(Debug, Clone)]
pub struct RunInspection {
    /// The run's folder.
    pub dir: PathBuf,
    /// The run's folder name.
    pub run: String,
    /// Its condition, strength and seed, as the run list labels it.
    pub label: String,
    /// Its tapped layers (what the similarity loss pulls).
    pub taps: Vec<usize>,
    /// Its final layer weights gamma, one per tap (none before the first logged step).
    pub gamma: Option<Vec<f64>>,
    /// Per inspected layer, in depth order.
    pub layers: Vec<LayerResult>,
}

/// Everything an inspection found.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The images and the neural matrix with its ceiling.
    pub neural: NeuralReference,
    /// The spectral order of the neural matrix, shared by every matrix shown.
    pub order: Vec<usize>,
    /// Eq. 9 of the raw pixels and its agreement with the neural matrix.
    pub pixels: LayerResult,
    /// The runs.
    pub runs: Vec<RunInspection>,
    /// How it was made.
    pub request: InspectRequest,
}

/// Inspects `request.runs` on `neural`'s images.
pub fn inspect(
    neural: NeuralReference,
    request: &InspectRequest,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Inspection> {
    progress.stage("inspecting layers", request.runs.len() as u64 + 1);
    let estimate =
        |m: &SimilarityMatrix| bootstrap(m, &neural.matrix, request.resamples, request.seed);
    let pixel = pixel_matrix(&neural.pixels, neural.shape, device)?;
    let pixels = LayerResult {
        estimate: estimate(&pixel)?,
        layer: LayerMatrix {
            layer: 0,
            name: "pixels".into(),
            size: (1, neural.shape.0, neural.shape.1),
            matrix: pixel,
        },
    };
    progress.advance(1);
    let mut runs = Vec::with_capacity(request.runs.len());
    for dir in &request.runs {
        progress.check()?;
        let info = RunInfo::read(dir)?;
        let tapped = TappedRun::load(dir, request.layers, device)?;
        let matrices = tapped.layer_matrices(&neural.pixels, neural.shape, device)?;
        let layers = matrices
            .into_par_iter()
            .map(|layer| {
                Ok(LayerResult {
                    estimate: estimate(&layer.matrix)?,
                    layer,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        runs.push(RunInspection {
            dir: dir.clone(),
            run: info.name(),
            label: format!(
                "{} (a {}, seed {})",
                info.config.condition.label(),
                info.config.strength,
                info.config.seed
            ),
            taps: info.config.network(0).taps,
            gamma: info.steps().last().map(|s| s.3.clone()),
            layers,
        });
        progress.advance(1);
    }
    Ok(Inspection {
        order: spectral_order(&neural.matrix),
        neural,
        pixels,
        runs,
        request: request.clone(),
    })
}
