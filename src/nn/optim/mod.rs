//! The optimisers (SGD, Adam), their common trait and the learning-rate schedules.

pub mod adam;
pub mod optimiser;
pub mod schedule;
pub mod sgd;
