//! Training loops: the predictive model (SPEC 6).

pub mod checkpoint;
pub mod predictor;
pub mod predictor_data;
