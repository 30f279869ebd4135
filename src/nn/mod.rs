//! Networks and their optimisers: the predictive model of docs/method.md section 6 and the ResNets of docs/method.md section 7.

pub mod adam;
pub mod add_relu;
pub mod batch_norm;
pub mod blur;
pub mod checkpoint;
pub mod conv;
pub(crate) mod cpu;
pub mod factorized_readout;
pub mod gaussian_readout;
pub(crate) mod gemm;
pub mod layer_similarity;
pub mod optimiser;
pub mod predictor;
pub mod predictor_data;
pub mod readout_weights;
pub mod resnet;
pub mod sampled_readout;
pub mod schedule;
pub mod seeded_init;
pub mod sgd;
pub(crate) mod shifted_conv;
pub mod stacked_core;
pub mod vgg;

use candle_core::Var;
use candle_nn::VarMap;

/// The variables of `varmap` with their names, as the optimisers take them.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    varmap
        .data()
        .lock()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}
