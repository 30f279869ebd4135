//! The library's one error type: every error a user can cause names the file
//! (or scan) and says what is wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be opened, listed, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file exists but its contents are wrong (format, shape, values).
    #[error("{path}: {problem}")]
    File {
        /// The file, or `archive.zip:inner/path` for a file inside a zip.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Data that loaded fine cannot be used for the requested analysis.
    #[error("{what}: {problem}")]
    Analysis {
        /// The scan or matrix concerned.
        what: String,
        /// Why the analysis cannot go on.
        problem: String,
    },
    /// A training run's loss went NaN or infinite: the run recorded why and stopped there.
    #[error("{run}: {reason}")]
    Diverged {
        /// The run (its folder, or the scan a predictor was fitted to).
        run: String,
        /// The step and the losses.
        reason: String,
    },
    /// A bad setting or argument.
    #[error("{0}")]
    Config(String),
    /// The computing device failed.
    #[error("compute device: {0}")]
    Device(#[from] candle_core::Error),
    /// The user cancelled the job.
    #[error("cancelled")]
    Cancelled,
    /// The job saved its state and stopped when asked to, to resume later.
    #[error("paused: {0}")]
    Paused(String),
}

impl Error {
    /// An error about the contents of `path`.
    pub fn file(path: impl std::fmt::Display, problem: impl Into<String>) -> Self {
        Error::File {
            path: path.to_string(),
            problem: problem.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An analysis that cannot be done on `what`.
    pub fn analysis(what: impl std::fmt::Display, problem: impl Into<String>) -> Self {
        Error::Analysis {
            what: what.to_string(),
            problem: problem.into(),
        }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;
