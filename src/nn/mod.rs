//! Networks and their optimisers: the predictive model of docs/method.md section 6 and the ResNets of docs/method.md section 7.

pub mod checkpoint;
pub mod kernels;
pub mod models;
pub mod optim;
pub mod seeded_init;

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
