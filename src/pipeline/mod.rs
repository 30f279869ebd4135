//! The pipeline floor (the README's "Layout"): one function per arrow of the data flow that the
//! window and the command line both start, taking a request, a progress sink and, where the
//! window shows partial results, an event callback, and returning typed results. The command
//! line prints what it returns; the window draws its events.

pub mod attack;
pub mod denoising;
pub mod noise;
pub mod predictors;
pub mod target;
