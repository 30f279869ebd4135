//! Runs a job (any long library call) on a worker thread: progress flows in
//! through a shared status, a cancel flag flows out, the result comes back
//! over a channel. The window polls jobs each frame and never blocks on them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::progress::Progress;

/// What the status bar shows of a running job.
pub struct JobStatus {
    /// The job's name.
    pub name: String,
    /// Current stage, steps done, steps in the stage.
    stage: Mutex<(String, u64, u64)>,
    cancel: AtomicBool,
    pause: AtomicBool,
    finished: AtomicBool,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl JobStatus {
    /// The current stage and its progress as a fraction (0 when unknown).
    pub fn progress(&self) -> (String, f32) {
        let s = self.stage.lock().map(|s| s.clone()).unwrap_or_default();
        let fraction = if s.2 == 0 {
            0.0
        } else {
            s.1 as f32 / s.2 as f32
        };
        (s.0, fraction.min(1.0))
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Asks the job to save its state and stop, to resume later (jobs that cannot, stop).
    pub fn pause(&self) {
        self.pause.store(true, Ordering::Relaxed);
    }

    /// Whether the job has returned.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }
}

impl Progress for JobStatus {
    fn stage(&self, name: &str, total: u64) {
        if let Ok(mut s) = self.stage.lock() {
            *s = (name.to_string(), 0, total);
        }
        (self.repaint)();
    }

    fn advance(&self, n: u64) {
        if let Ok(mut s) = self.stage.lock() {
            s.1 += n;
        }
        (self.repaint)();
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn pause_requested(&self) -> bool {
        self.pause.load(Ordering::Relaxed)
    }
}

/// A job whose result has type `T`.
pub struct Job<T> {
    status: Arc<JobStatus>,
    result: Receiver<Result<T>>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread; `repaint` is called whenever there is news.
    pub fn spawn(
        name: &str,
        repaint: Arc<dyn Fn() + Send + Sync>,
        work: impl FnOnce(&dyn Progress) -> Result<T> + Send + 'static,
    ) -> Job<T> {
        let status = Arc::new(JobStatus {
            name: name.to_string(),
            stage: Mutex::new((name.to_string(), 0, 0)),
            cancel: AtomicBool::new(false),
            pause: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            repaint,
        });
        let (tx, rx) = channel();
        let worker = status.clone();
        std::thread::spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(worker.as_ref())))
                    .unwrap_or_else(|_| {
                        Err(Error::Config(format!(
                            "job {:?} failed unexpectedly (a bug: please report it)",
                            worker.name
                        )))
                    });
            let _ = tx.send(outcome);
            worker.finished.store(true, Ordering::Relaxed);
            (worker.repaint)();
        });
        Job { status, result: rx }
    }

    /// The result once the job has finished; `None` while it runs.
    pub fn poll(&mut self) -> Option<Result<T>> {
        match self.result.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(Error::Cancelled)),
        }
    }

    /// The job's shared status (for the status bar).
    pub fn status(&self) -> Arc<JobStatus> {
        self.status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait<T: Send + 'static>(job: &mut Job<T>) -> Result<T> {
        loop {
            if let Some(r) = job.poll() {
                return r;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn returns_results_and_honours_cancel() {
        let mut job = Job::spawn("sum", Arc::new(|| {}), |p| {
            p.stage("adding", 2);
            p.advance(2);
            Ok(1 + 1)
        });
        assert_eq!(wait(&mut job).unwrap(), 2);
        assert_eq!(job.status().progress().1, 1.0);

        let (go_tx, go_rx) = channel::<()>();
        let mut job = Job::spawn("loop", Arc::new(|| {}), move |p| {
            go_rx.recv().ok();
            p.check()?;
            Ok(())
        });
        job.status().cancel();
        go_tx.send(()).unwrap();
        assert!(matches!(wait(&mut job), Err(Error::Cancelled)));
    }

    #[test]
    fn a_panicking_job_reports_an_error() {
        let mut job: Job<()> = Job::spawn("bad", Arc::new(|| {}), |_| panic!("boom"));
        assert!(wait(&mut job)
            .unwrap_err()
            .to_string()
            .contains("failed unexpectedly"));
    }
}
