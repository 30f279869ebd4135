//! The run store (the README's "Regularised training" describes it): a run folder holds
//! `config.json`, `metrics.jsonl` and `checkpoints/`; runs started from the command line and
//! from the window are the same folders.

pub mod classifier;
pub mod config;
pub mod inputs;
pub mod lock;
pub mod metrics;
pub mod predictor;
pub mod run_dir;
pub mod store;
pub mod summary;
pub mod workspace;

pub use config::{BnStatistics, Condition, Optimizer, RunConfig};
pub use metrics::MetricEvent;
pub use run_dir::{PredictorDir, RunDir};
pub use store::{list_runs, RunInfo, RunStatus};
pub use workspace::Workspace;
