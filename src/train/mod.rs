//! Training loops: the predictive model (SPEC 6) and the regularised classifier (SPEC 7).

pub mod classifier;
pub mod classifier_data;
pub mod classifier_model;
pub mod predictor;
pub mod similarity_loss;
pub(crate) mod step_scalars;
pub mod targets;
pub mod throughput;
