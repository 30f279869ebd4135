//! Networks and their optimisers: the predictive model's parts (SPEC 6).

pub mod adam;
pub mod gaussian_readout;
