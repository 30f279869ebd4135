//! neureg: learning from brains how to regularise machines (Li et al. 2019).
//!
//! The library holds every computation; `ui` and `cli` are thin layers over it.
//! Nothing outside `ui` knows egui exists.

mod allocator;
pub mod atomic;
pub mod cli;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod figures;
pub mod inspect;
pub mod jobs;
pub mod nn;
pub mod pipeline;
pub mod progress;
pub mod runs;
pub mod samples;
pub mod similarity;
pub mod stats;
pub mod train;
pub mod ui;

pub use error::{Error, Result};
