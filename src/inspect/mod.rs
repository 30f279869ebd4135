//! Inspecting networks against the brain: for each network (a trained run, or a frozen VGG)
//! and conv layer, the layer's similarity matrix beside the neural one (the mean oracle
//! similarity on the oracle images, or a run's target on its images), their agreement (RSA,
//! CKA, debiased CKA) with bootstrap intervals, the noise ceiling of the neural matrix and the
//! pixel baseline. `neureg inspect` and the window's Inspect tab both call [`inspect`].

pub mod layers;
pub mod neural;
pub mod write;

use std::path::PathBuf;

use candle_core::Device;
use rayon::prelude::*;

use crate::data::Scan;
use crate::error::Result;
use crate::inspect::layers::{LayerBn, LayerChoice, LayerMatrix, NetworkAbout, TappedNetwork};
use crate::inspect::neural::{reference, NeuralReference, ReferenceChoice};
use crate::progress::Progress;
use crate::similarity::agreement::{bootstrap, Estimate};
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::ordering::spectral_order;
use crate::similarity::pixels::pixel_similarity;

/// What to inspect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InspectRequest {
    /// Run folders and VGG weights files.
    pub networks: Vec<PathBuf>,
    /// The matrix the layers are compared with.
    pub reference: ReferenceChoice,
    /// A run's tapped layers or every conv layer.
    pub layers: LayerChoice,
    /// How a run's batch norm normalises the images.
    pub batch_norm: LayerBn,
    /// Bootstrap resamples of the images per interval.
    pub resamples: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

/// One layer of one network against the neural matrix.
#[derive(Debug, Clone)]
pub struct LayerResult {
    /// The layer and its matrix.
    pub layer: LayerMatrix,
    /// Its agreement with the neural matrix.
    pub estimate: Estimate,
}

/// One network's layers.
#[derive(Debug, Clone)]
pub struct NetworkInspection {
    /// What the network is.
    pub about: NetworkAbout,
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
    /// The pixel similarity (`similarity::pixels`) and its agreement with the neural matrix.
    pub pixels: LayerResult,
    /// The networks.
    pub networks: Vec<NetworkInspection>,
    /// How it was made.
    pub request: InspectRequest,
}

/// Inspects `request.networks` against the reference it names (the oracle images are those
/// common to `scans`).
pub fn inspect(
    request: &InspectRequest,
    scans: &[&Scan],
    device: &Device,
    progress: &dyn Progress,
) -> Result<Inspection> {
    progress.stage("inspecting layers", request.networks.len() as u64 + 1);
    let neural = reference(&request.reference, scans, device)?;
    let estimate =
        |m: &SimilarityMatrix| bootstrap(m, &neural.matrix, request.resamples, request.seed);
    let refs: Vec<&[f32]> = neural.pixels.iter().map(Vec::as_slice).collect();
    let pixel = pixel_similarity(&refs, neural.shape, 0.0, device)?;
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
    let mut networks = Vec::with_capacity(request.networks.len());
    for path in &request.networks {
        progress.check()?;
        let tapped = TappedNetwork::load(path, request.layers, device)?;
        let matrices =
            tapped.layer_matrices(&neural.pixels, neural.shape, request.batch_norm, device)?;
        let layers = matrices
            .into_par_iter()
            .map(|layer| {
                Ok(LayerResult {
                    estimate: estimate(&layer.matrix)?,
                    layer,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        networks.push(NetworkInspection {
            about: tapped.about,
            layers,
        });
        progress.advance(1);
    }
    Ok(Inspection {
        order: spectral_order(&neural.matrix),
        neural,
        pixels,
        networks,
        request: request.clone(),
    })
}
