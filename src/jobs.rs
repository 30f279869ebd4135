//! Runs a job (any long library call) on a worker thread: progress flows in
//! through a shared status, a cancel flag flows out, the result comes back
//! over a channel. The window keeps its jobs in one registry keyed by what they do, polls it
//! each frame and never blocks on it.

use std::any::Any;
use std::collections::BTreeMap;
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

/// The window's running jobs, keyed by what they do (e.g. `"predictor.fit"`): the status bar lists
/// them, cancel buttons reach them, their owners collect their results by key.
#[derive(Default)]
pub struct Jobs {
    running: BTreeMap<String, Job<Box<dyn Any + Send>>>,
    repaint: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Jobs {
    /// Whether jobs have a repaint callback yet.
    pub fn has_repaint(&self) -> bool {
        self.repaint.is_some()
    }

    /// Calls `repaint` whenever a job started from now on has news.
    pub fn set_repaint(&mut self, repaint: Arc<dyn Fn() + Send + Sync>) {
        self.repaint = Some(repaint);
    }

    /// Starts `work` under `key` unless a job of that key is running (then false).
    pub fn spawn<T: Send + 'static>(
        &mut self,
        key: &str,
        name: &str,
        work: impl FnOnce(&dyn Progress) -> Result<T> + Send + 'static,
    ) -> bool {
        if self.running.contains_key(key) {
            return false;
        }
        let repaint = self.repaint.clone().unwrap_or_else(|| Arc::new(|| {}));
        let job = Job::spawn(name, repaint, move |p| {
            work(p).map(|v| Box::new(v) as Box<dyn Any + Send>)
        });
        self.running.insert(key.to_string(), job);
        true
    }

    /// The result of the job under `key` once it has finished (the job leaves the registry);
    /// `None` while it runs or when there is none.
    pub fn take<T: 'static>(&mut self, key: &str) -> Option<Result<T>> {
        let result = self.running.get_mut(key)?.poll()?;
        self.running.remove(key);
        Some(result.and_then(|v| {
            v.downcast::<T>().map(|v| *v).map_err(|_| {
                Error::Config(format!(
                    "job {key:?} returned another type (a bug: please report it)"
                ))
            })
        }))
    }

    /// Whether a job runs under `key`.
    pub fn is_running(&self, key: &str) -> bool {
        self.running.contains_key(key)
    }

    /// Whether any job runs.
    pub fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// Asks the job under `key`, if any, to stop.
    pub fn cancel(&self, key: &str) {
        if let Some(job) = self.running.get(key) {
            job.status.cancel();
        }
    }

    /// Drops the job under `key` from the registry (it runs on, unheard, until it checks its
    /// cancel flag).
    pub fn forget(&mut self, key: &str) {
        self.running.remove(key);
    }

    /// The status of the job under `key`.
    pub fn status(&self, key: &str) -> Option<Arc<JobStatus>> {
        self.running.get(key).map(Job::status)
    }

    /// Every running job's status, in key order.
    pub fn statuses(&self) -> Vec<Arc<JobStatus>> {
        self.running.values().map(Job::status).collect()
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

    #[test]
    fn the_registry_keeps_one_job_per_key_and_hands_its_result_to_its_key() {
        let mut jobs = Jobs::default();
        let (go_tx, go_rx) = channel::<()>();
        assert!(jobs.spawn("a", "first", move |_| {
            go_rx.recv().ok();
            Ok(7u32)
        }));
        assert!(!jobs.spawn("a", "second", |_| Ok(8u32)), "one job per key");
        assert!(jobs.is_running("a") && jobs.is_busy());
        assert_eq!(jobs.statuses().len(), 1);
        assert!(jobs.take::<u32>("a").is_none(), "still running");
        go_tx.send(()).unwrap();
        let result = loop {
            if let Some(r) = jobs.take::<u32>("a") {
                break r;
            }
            std::thread::yield_now();
        };
        assert_eq!(result.unwrap(), 7);
        assert!(!jobs.is_busy());
        assert!(jobs.take::<u32>("b").is_none());
        // A caller asking for the wrong type gets an error, not a panic.
        jobs.spawn("c", "typed", |_| Ok("text"));
        let wrong = loop {
            if let Some(r) = jobs.take::<u32>("c") {
                break r;
            }
            std::thread::yield_now();
        };
        assert!(wrong.unwrap_err().to_string().contains("another type"));
    }
}
