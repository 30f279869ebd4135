//! Training loops: the predictive model (docs/method.md section 6) and the regularised classifier (docs/method.md section 7).

pub mod classifier;
pub mod classifier_data;
pub mod classifier_model;
pub mod predictor;
pub mod similarity_loss;
pub(crate) mod step_scalars;
pub mod targets;
pub mod throughput;
