//! How long the window takes to build each frame: the last, the 95th percentile and the worst
//! of the last [`KEPT`] frames, in the status bar; every frame's time appended to the file
//! `NEUREG_FRAME_LOG` names, when it names one (one line per frame: seconds since start,
//! milliseconds).

use std::io::Write as _;
use std::time::{Duration, Instant};

/// Frames the summary covers.
pub const KEPT: usize = 600;

/// The recent frame times.
pub struct FrameTimes {
    recent: std::collections::VecDeque<Duration>,
    log: Option<std::fs::File>,
    started: Instant,
}

impl Default for FrameTimes {
    fn default() -> Self {
        let log = std::env::var_os("NEUREG_FRAME_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        FrameTimes {
            recent: Default::default(),
            log,
            started: Instant::now(),
        }
    }
}

/// The summary the status bar shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSummary {
    /// The last frame.
    pub last: Duration,
    /// The 95th percentile of the kept frames.
    pub p95: Duration,
    /// The slowest of them.
    pub worst: Duration,
}

impl FrameTimes {
    /// Records a frame that took `took`.
    pub fn record(&mut self, took: Duration) {
        if self.recent.len() == KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
        if let Some(log) = &mut self.log {
            let _ = writeln!(
                log,
                "{:.3} {:.3}",
                self.started.elapsed().as_secs_f64(),
                took.as_secs_f64() * 1e3
            );
        }
    }

    /// The last, 95th-percentile and worst frame time, once a frame was recorded.
    pub fn summary(&self) -> Option<FrameSummary> {
        let last = *self.recent.back()?;
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort();
        let p95 = sorted[((sorted.len() - 1) as f64 * 0.95).round() as usize];
        Some(FrameSummary {
            last,
            p95,
            worst: *sorted.last()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_and_worst_of_the_kept_frames() {
        let mut f = FrameTimes::default();
        assert_eq!(f.summary(), None);
        for ms in 1..=100u64 {
            f.record(Duration::from_millis(ms));
        }
        let s = f.summary().unwrap();
        assert_eq!(s.last, Duration::from_millis(100));
        assert_eq!(s.worst, Duration::from_millis(100));
        // round(99 * 0.95) = 94: the 95th of 1..=100.
        assert_eq!(s.p95, Duration::from_millis(95));
        for _ in 0..KEPT {
            f.record(Duration::from_millis(2));
        }
        assert_eq!(f.summary().unwrap().worst, Duration::from_millis(2));
    }
}
