//! What the tabs share (the README's "Layout"): the device, the workspace, the loaded scans and their
//! analysis, the target built last, the run store's snapshot with the ticked runs, the job
//! registry and the messages. Each tab owns the rest of its state.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::Device;

use super::frame_time::FrameTimes;
use super::widgets::colour_map::matrix_picture;
use super::widgets::stimulus::StimulusTextures;
use crate::data::{load_scan, LoadOptions, Scan};
use crate::jobs::Jobs;
use crate::pipeline::target::BuiltTarget;
use crate::runs::store::{list_runs, RunInfo};
use crate::runs::summary::{condition_table, ConditionRow};
use crate::runs::Workspace;
use crate::samples::sample_path;
use crate::similarity::analysis::{analyse_oracles, OracleAnalysis};
use crate::similarity::weights::{snr_weights, SnrWeights};

/// Seconds between re-reads of the run folders.
pub const REFRESH_SECONDS: f64 = 1.0;

/// The job key of the oracle analysis.
const ANALYSIS: &str = "scans.analysis";

/// Pixels a side of the picture of a target at most.
const TARGET_PICTURE: usize = 1024;

/// A built target with its picture in its spectral order, made by the job that built it so that
/// showing a paper-size target costs no frame.
pub struct ShownTarget {
    /// The target.
    pub built: BuiltTarget,
    /// Its picture, at most [`TARGET_PICTURE`] pixels a side.
    pub picture: eframe::egui::ColorImage,
    /// The colour range: the largest entry off the diagonal (which is 1 by construction).
    pub vmax: f32,
}

impl ShownTarget {
    /// Orders and pictures `built`.
    pub fn of(built: BuiltTarget) -> Self {
        let m = &built.target.matrix;
        let vmax = m.upper().iter().fold(1e-6f32, |a, v| a.max(v.abs()));
        let picture = matrix_picture(&m.reordered(&built.order), vmax, TARGET_PICTURE);
        ShownTarget {
            built,
            picture,
            vmax,
        }
    }
}

/// A scan in the window, with its signal-to-noise weights.
pub struct LoadedScan {
    /// The scan.
    pub scan: Arc<Scan>,
    /// Eq. 1 weights, or why they cannot be computed.
    pub snr: Result<SnrWeights, String>,
}

/// The run store as the window last read it.
pub struct RunList {
    /// The folder holding the runs.
    pub root: String,
    /// The runs found there, with their metrics.
    pub runs: Vec<RunInfo>,
    /// The runs ticked: their curves are drawn and the Robustness tab evaluates them.
    pub ticked: BTreeSet<PathBuf>,
    /// Table 1 of the runs.
    pub table: Vec<ConditionRow>,
    /// The folder `runs` was read from.
    read_from: String,
    refreshed_at: f64,
}

impl RunList {
    /// The runs in `root`, not read yet.
    pub fn new(root: String) -> Self {
        RunList {
            root,
            runs: Vec::new(),
            ticked: BTreeSet::new(),
            table: Vec::new(),
            read_from: String::new(),
            refreshed_at: f64::NEG_INFINITY,
        }
    }

    /// The workspace's runs, or, while it has none, the runs of the shipped lecture experiment
    /// (so that a newcomer sees the comparison without training anything).
    pub fn default_root(workspace: &Workspace) -> String {
        let shipped = sample_path("experiments/lecture/runs", Some(&workspace.root));
        let own = workspace.runs();
        if !own.is_dir() && shipped.is_dir() {
            shipped.display().to_string()
        } else {
            own.display().to_string()
        }
    }

    /// When the run folders were last re-read (egui's clock): views that read more of each run
    /// refresh with it.
    pub fn refreshed_at(&self) -> f64 {
        self.refreshed_at
    }

    /// Asks for a re-read on the next frame.
    pub fn refresh_soon(&mut self) {
        self.refreshed_at = f64::NEG_INFINITY;
    }

    /// Re-reads the run folders when a second has passed since the last time, or at once when
    /// the folder changed (its runs are ticked afresh).
    pub fn refresh_if_due(&mut self, now: f64, errors: &mut Vec<String>) {
        let moved = self.read_from != self.root;
        if now - self.refreshed_at < REFRESH_SECONDS && !moved {
            return;
        }
        if moved && !self.read_from.is_empty() {
            self.ticked.clear();
        }
        self.read_from = self.root.clone();
        match list_runs(Path::new(&self.root)) {
            Ok(found) => {
                self.runs = found
                    .into_iter()
                    .filter_map(|r| r.map_err(|e| push_new(errors, e.to_string())).ok())
                    .collect();
            }
            Err(e) => push_new(errors, e.to_string()),
        }
        self.table = condition_table(&self.runs);
        self.refreshed_at = now;
        if self.ticked.is_empty() {
            // Nothing chosen yet: every run found.
            self.ticked = self.runs.iter().map(|r| r.dir.clone()).collect();
        }
    }

    /// The ticked runs, in the list's order.
    pub fn ticked_runs(&self) -> Vec<&RunInfo> {
        self.runs
            .iter()
            .filter(|r| self.ticked.contains(&r.dir))
            .collect()
    }
}

/// The state every tab may read and change.
pub struct Shared {
    /// The computing device.
    pub device: Device,
    /// How scans are read.
    pub options: LoadOptions,
    /// Default folders for runs, predictors, targets, experiments and exports.
    pub workspace: Workspace,
    /// Where exports are written.
    pub export_dir: PathBuf,
    /// The scans loaded, in the order they were opened.
    pub scans: Vec<LoadedScan>,
    /// Paths waiting to be loaded, then loading (in the order they were opened).
    pending: Vec<PathBuf>,
    loading: Vec<PathBuf>,
    /// The oracle analysis of all loaded scans, when done.
    pub analysis: Option<Arc<OracleAnalysis>>,
    /// Why the analysis of the loaded scans failed, if it did.
    pub analysis_error: Option<String>,
    /// The regularisation target built last (shown in the Similarity tab).
    pub target: Option<Arc<ShownTarget>>,
    /// The run store's snapshot.
    pub runs: RunList,
    /// The running jobs.
    pub jobs: Jobs,
    /// Errors shown until dismissed.
    pub errors: Vec<String>,
    /// Informational messages (exports written).
    pub notices: Vec<String>,
    /// Messages from callbacks that run outside the frame (screenshots).
    pub later: Arc<Mutex<Vec<String>>>,
    /// Textures of stimuli shown.
    pub stimuli: StimulusTextures,
    /// How long the last frames took to build.
    pub frames: FrameTimes,
}

impl Shared {
    /// Nothing loaded yet; runs listed from `workspace`.
    pub fn new(device: Device, options: LoadOptions, workspace: Workspace) -> Self {
        Shared {
            device,
            options,
            export_dir: workspace.exports(),
            runs: RunList::new(RunList::default_root(&workspace)),
            workspace,
            scans: Vec::new(),
            pending: Vec::new(),
            loading: Vec::new(),
            analysis: None,
            analysis_error: None,
            target: None,
            jobs: Jobs::default(),
            errors: Vec::new(),
            notices: Vec::new(),
            later: Arc::default(),
            stimuli: StimulusTextures::default(),
            frames: FrameTimes::default(),
        }
    }

    /// Queues a scan folder or zip for loading.
    pub fn open(&mut self, path: PathBuf) {
        // Absolute, so that the remembered list works from any working folder.
        self.pending
            .push(std::fs::canonicalize(&path).unwrap_or(path));
    }

    /// The paths of the loaded scans and of those still loading (what the window remembers).
    pub fn scan_paths(&self) -> Vec<PathBuf> {
        let loaded = self.scans.iter().map(|s| s.scan.source.clone());
        loaded
            .chain(self.loading.iter().cloned())
            .chain(self.pending.iter().cloned())
            .collect()
    }

    /// Whether a scan is waiting to load or any job is running.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty() || self.jobs.is_busy()
    }

    /// Removes scan `index` and recomputes the analysis.
    pub fn remove_scan(&mut self, index: usize) {
        if index < self.scans.len() {
            self.scans.remove(index);
            self.scans_changed();
        }
    }

    /// Starts queued loads, collects finished loads and the analysis.
    pub fn poll_scans(&mut self) {
        for path in std::mem::take(&mut self.pending) {
            if self.scans.iter().any(|s| s.scan.source == path) || self.loading.contains(&path) {
                self.notices
                    .push(format!("{} is already open", path.display()));
                continue;
            }
            let (options, p) = (self.options.clone(), path.clone());
            // The weights with the scan, on the worker: Eq. 1 over every oracle trial took the
            // frame it arrived in.
            self.jobs.spawn(
                &load_key(&path),
                &format!("loading {}", path.display()),
                move |progress| {
                    let scan = load_scan(&p, options, progress)?;
                    let snr = snr_weights(&scan, &scan.oracle_trials()).map_err(|e| e.to_string());
                    Ok(LoadedScan {
                        scan: Arc::new(scan),
                        snr,
                    })
                },
            );
            self.loading.push(path);
        }
        // Scans join the list in the order they were opened, whatever order their loads finish in.
        let mut changed = false;
        while let Some(path) = self.loading.first() {
            let Some(result) = self.jobs.take::<LoadedScan>(&load_key(path)) else {
                break;
            };
            self.loading.remove(0);
            match result {
                Ok(loaded) => {
                    self.scans.push(loaded);
                    changed = true;
                }
                Err(crate::Error::Cancelled) => {}
                Err(e) => self.errors.push(e.to_string()),
            }
        }
        if changed && self.loading.is_empty() {
            self.scans_changed();
        } else if changed {
            self.stimuli.clear();
        }
        if let Some(result) = self.jobs.take::<OracleAnalysis>(ANALYSIS) {
            match result {
                Ok(a) => self.analysis = Some(Arc::new(a)),
                Err(crate::Error::Cancelled) => {
                    self.analysis_error = Some("the analysis was cancelled".into())
                }
                Err(e) => self.analysis_error = Some(e.to_string()),
            }
        }
        if let Ok(mut later) = self.later.lock() {
            self.notices.append(&mut later);
        }
    }

    /// Starts the analysis of the new set of scans (an analysis of the old set is cancelled).
    fn scans_changed(&mut self) {
        self.stimuli.clear();
        self.analysis = None;
        self.analysis_error = None;
        // An analysis of the old set of scans is no longer wanted: cancelled, its result dropped.
        self.jobs.cancel(ANALYSIS);
        self.jobs.forget(ANALYSIS);
        if self.scans.is_empty() {
            return;
        }
        let scans: Vec<Arc<Scan>> = self.scans.iter().map(|s| s.scan.clone()).collect();
        let device = self.device.clone();
        self.jobs.spawn(ANALYSIS, "oracle similarity", move |p| {
            let refs: Vec<&Scan> = scans.iter().map(|s| s.as_ref()).collect();
            analyse_oracles(&refs, &device, p)
        });
    }

    /// The loaded scans.
    pub fn scan_handles(&self) -> Vec<Arc<Scan>> {
        self.scans.iter().map(|s| s.scan.clone()).collect()
    }

    /// Reports a finished job's error, unless it was a cancel.
    pub fn report<T>(&mut self, result: crate::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(crate::Error::Cancelled) => None,
            Err(e) => {
                self.errors.push(e.to_string());
                None
            }
        }
    }
}

/// Adds `message` unless `errors` shows it already (what is re-read once a second, a broken run
/// folder or results file, is found again at every re-read).
pub fn push_new(errors: &mut Vec<String>, message: String) {
    if !errors.contains(&message) {
        errors.push(message);
    }
}

/// The job key of loading `path`.
fn load_key(path: &Path) -> String {
    format!("scans.load {}", path.display())
}
