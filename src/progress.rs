//! Progress reporting and cancellation for long library calls.
//!
//! Every long computation takes a `&dyn Progress`; the command line backs it
//! with a progress bar, the window with a job's shared state.

use crate::error::{Error, Result};

/// Receives progress from a long computation and tells it when to stop.
pub trait Progress: Send + Sync {
    /// A new stage begins with `total` steps.
    fn stage(&self, name: &str, total: u64);
    /// `n` more steps of the current stage are done.
    fn advance(&self, n: u64);
    /// Whether the user asked to stop.
    fn is_cancelled(&self) -> bool {
        false
    }
    /// Whether the process was asked to save its work and stop, to resume later (a cluster's
    /// signal before its time limit or a preemption). Loops that can checkpoint mid-way do so
    /// and return `Err(Paused)`; others stop at their next check.
    fn pause_requested(&self) -> bool {
        false
    }
    /// `Err(Cancelled)` once the user asked to stop.
    fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Progress that goes nowhere (tests, quick calls).
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}
