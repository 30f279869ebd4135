//! `metrics.jsonl`: one event a line, appended and flushed as training goes. The one JSONL
//! writer and reader of the project, generic over the event type (a classifier run's
//! [`MetricEvent`], a predictor fit's epoch figures).

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// One line of a run's metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MetricEvent {
    /// Every `log_every` steps: the step's losses, learning rate and layer weights.
    Step {
        /// 0-based epoch.
        epoch: usize,
        /// Steps taken so far (1-based).
        step: u64,
        /// Cross-entropy of the batch.
        task_loss: f64,
        /// Eq. 8 of the similarity batch (0 without regulariser).
        sim_loss: f64,
        /// Learning rate.
        lr: f64,
        /// Layer weights `softmax(theta)` (Eq. 10).
        gamma: Vec<f64>,
    },
    /// The end of an epoch.
    Epoch {
        /// 0-based epoch.
        epoch: usize,
        /// Steps taken so far.
        step: u64,
        /// Mean cross-entropy over the epoch's batches.
        task_loss: f64,
        /// Accuracy on the epoch's (augmented) training batches.
        train_accuracy: f64,
        /// Accuracy on the test images.
        test_accuracy: f64,
    },
    /// The run stopped before its end (for example a NaN loss).
    Stopped {
        /// Steps taken.
        step: u64,
        /// Why.
        reason: String,
    },
    /// The run completed every epoch.
    Finished {
        /// Steps taken.
        step: u64,
        /// Final test accuracy.
        test_accuracy: f64,
    },
}

/// Appends `event` to `path` and flushes it.
pub fn append<T: Serialize>(path: &Path, event: &T) -> Result<()> {
    let mut line =
        serde_json::to_string(event).map_err(|e| Error::file(path.display(), e.to_string()))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(line.as_bytes())
        .and_then(|_| f.flush())
        .map_err(|e| Error::io(path, e))
}

/// A run's metrics log that counts its lines (a checkpoint records the count).
pub struct MetricsLog {
    path: std::path::PathBuf,
    /// Events in the file.
    pub lines: usize,
}

impl MetricsLog {
    /// The log at `path`, cut to its first `lines` events.
    pub fn resume(path: &Path, lines: usize) -> Result<Self> {
        truncate(path, lines)?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            lines: read::<MetricEvent>(path)?.len(),
        })
    }

    /// Appends `event`.
    pub fn log(&mut self, event: &MetricEvent) -> Result<()> {
        append(&self.path, event)?;
        self.lines += 1;
        Ok(())
    }
}

/// Reads the events of `path`; a missing file has none, and a last line cut
/// short by a kill is ignored. A broken line elsewhere is an error.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(Error::file(
                    path.display(),
                    format!("line {}: not a metrics event: {e}", i + 1),
                ))
            }
        }
    }
    Ok(events)
}

/// Keeps the first `count` events of `path` (a resumed run drops what came after its checkpoint).
pub fn truncate(path: &Path, count: usize) -> Result<()> {
    let events: Vec<serde_json::Value> = read(path)?;
    let mut text = String::new();
    for e in events.iter().take(count) {
        text.push_str(
            &serde_json::to_string(e).map_err(|e| Error::file(path.display(), e.to_string()))?,
        );
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        assert!(read::<MetricEvent>(&p).unwrap().is_empty());
        let events = [
            MetricEvent::Stopped {
                step: 1,
                reason: "a".into(),
            },
            MetricEvent::Finished {
                step: 2,
                test_accuracy: 0.5,
            },
        ];
        for e in &events {
            append(&p, e).unwrap();
        }
        assert_eq!(read::<MetricEvent>(&p).unwrap(), events);
        // A kill in the middle of a line loses only that line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"event\":\"fin").unwrap();
        assert_eq!(read::<MetricEvent>(&p).unwrap(), events);
        truncate(&p, 1).unwrap();
        assert_eq!(read::<MetricEvent>(&p).unwrap(), events[..1]);
        std::fs::write(&p, "garbage\n{}\n").unwrap();
        assert!(read::<MetricEvent>(&p)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }
}
