//! The window: one file per tab, a status bar, widgets. The tabs hold view
//! state and start jobs; every computation happens in the library on a worker thread.

pub mod experiment_tab;
mod export;
pub mod predictor_tab;
pub mod robustness_tab;
mod scans_tab;
mod similarity_tab;
mod status_bar;
pub mod training_tab;
pub mod widgets;

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Device;
use eframe::egui;

use crate::data::{load_scan, LoadOptions, Scan};
use crate::jobs::{Job, JobStatus};
use crate::runs::Workspace;
use crate::similarity::analysis::{analyse_oracles, OracleAnalysis};
use crate::similarity::weights::{snr_weights, SnrWeights};
use widgets::stimulus::StimulusTextures;

/// The key under which the window remembers the scans it had open.
const STORAGE_KEY: &str = "neureg.scans";

/// The tabs, in the order of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Load and inspect scans.
    Scans,
    /// Oracle similarity, variability and extreme pairs.
    Similarity,
    /// The denoising predictive model and the target.
    Predictor,
    /// Regularised classifier runs.
    Training,
    /// Noise and adversarial robustness of trained runs.
    Robustness,
    /// Controlled comparisons: plans, units, reports.
    Experiment,
}

/// A scan in the window, with its signal-to-noise weights.
pub struct LoadedScan {
    /// The scan.
    pub scan: Arc<Scan>,
    /// Eq. 1 weights, or why they cannot be computed.
    pub snr: Result<SnrWeights, String>,
}

/// The whole window's state.
pub struct NeuregApp {
    device: Device,
    options: LoadOptions,
    /// The tab shown.
    pub tab: Tab,
    /// The scans loaded, in the order they were opened.
    pub scans: Vec<LoadedScan>,
    /// Paths waiting to be loaded on the next frame.
    pending: Vec<PathBuf>,
    loading: Vec<(PathBuf, Job<LoadedScan>)>,
    /// The oracle analysis of all loaded scans, when done.
    pub analysis: Option<Arc<OracleAnalysis>>,
    analysis_job: Option<Job<OracleAnalysis>>,
    /// Why the analysis of the loaded scans failed, if it did.
    pub analysis_error: Option<String>,
    /// Errors shown until dismissed.
    pub errors: Vec<String>,
    /// Informational messages (exports written).
    pub notices: Vec<String>,
    jobs: Vec<Arc<JobStatus>>,
    repaint: Option<Arc<dyn Fn() + Send + Sync>>,
    stimuli: StimulusTextures,
    scans_view: scans_tab::ScansView,
    similarity_view: similarity_tab::SimilarityView,
    /// The Predictor tab's settings, jobs and fitted predictors.
    pub predictor_view: predictor_tab::PredictorView,
    /// The Training tab's settings, queue and runs.
    pub training_view: training_tab::TrainingView,
    /// The Robustness tab's settings, jobs and gallery.
    pub robustness_view: robustness_tab::RobustnessView,
    /// The Experiment tab's experiment, job and report.
    pub experiment_view: experiment_tab::ExperimentView,
    /// The regularisation target built last, shown in the Similarity tab.
    pub target: Option<Arc<predictor_tab::BuiltTarget>>,
    /// Where exports are written.
    pub export_dir: PathBuf,
    /// The workspace: default folders for runs, predictors, experiments and exports.
    pub workspace: Workspace,
}

impl NeuregApp {
    /// A window on `workspace` that will load `paths` on its first frame.
    pub fn new(
        device: Device,
        options: LoadOptions,
        paths: Vec<PathBuf>,
        workspace: Workspace,
    ) -> Self {
        NeuregApp {
            device,
            options,
            tab: Tab::Scans,
            scans: Vec::new(),
            pending: paths,
            loading: Vec::new(),
            analysis: None,
            analysis_job: None,
            analysis_error: None,
            errors: Vec::new(),
            notices: Vec::new(),
            jobs: Vec::new(),
            repaint: None,
            stimuli: StimulusTextures::default(),
            scans_view: Default::default(),
            similarity_view: Default::default(),
            predictor_view: predictor_tab::PredictorView::new(&workspace),
            training_view: training_tab::TrainingView::new(&workspace),
            robustness_view: Default::default(),
            experiment_view: experiment_tab::ExperimentView::new(&workspace),
            target: None,
            export_dir: workspace.exports(),
            workspace,
        }
    }

    /// Queues a scan folder or zip for loading.
    pub fn open(&mut self, path: PathBuf) {
        // Absolute, so that the remembered list works from any working folder.
        self.pending
            .push(std::fs::canonicalize(&path).unwrap_or(path));
    }

    /// Whether any job is still running.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty()
            || !self.loading.is_empty()
            || self.analysis_job.is_some()
            || self.predictor_view.is_busy()
            || self.training_view.is_busy()
            || self.robustness_view.is_busy()
            || self.experiment_view.is_busy()
    }

    /// The cell of the oracle matrices under the pointer (display order), if any.
    pub fn similarity_view_hovered(&self) -> Option<(usize, usize)> {
        self.similarity_view.hovered
    }

    /// The predictors fitted or opened in the Predictor tab: (scan, folder).
    pub fn fitted_predictors(&self) -> Vec<(String, PathBuf)> {
        self.predictor_view
            .fitted
            .iter()
            .map(|f| (f.scan.name.clone(), f.dir.clone()))
            .collect()
    }

    /// The pinned cell of the oracle matrices (display order), if any.
    pub fn similarity_view_pinned(&self) -> Option<(usize, usize)> {
        self.similarity_view.pinned
    }

    /// The paths of the loaded scans (what the window remembers).
    pub fn scan_paths(&self) -> Vec<PathBuf> {
        self.scans.iter().map(|s| s.scan.source.clone()).collect()
    }

    /// Removes scan `index` and recomputes the analysis.
    pub fn remove_scan(&mut self, index: usize) {
        if index < self.scans.len() {
            self.scans.remove(index);
            self.scans_changed();
        }
    }

    fn scans_changed(&mut self) {
        self.stimuli.clear();
        self.similarity_view = Default::default();
        self.analysis = None;
        self.analysis_error = None;
        // An analysis of the old set of scans is no longer wanted.
        if let Some(old) = self.analysis_job.take() {
            old.status().cancel();
        }
        if self.scans.is_empty() {
            return;
        }
        let scans: Vec<Arc<Scan>> = self.scans.iter().map(|s| s.scan.clone()).collect();
        let device = self.device.clone();
        let job = Job::spawn("oracle similarity", self.repaint_fn(), move |p| {
            let refs: Vec<&Scan> = scans.iter().map(|s| s.as_ref()).collect();
            analyse_oracles(&refs, &device, p)
        });
        self.jobs.push(job.status());
        self.analysis_job = Some(job);
    }

    fn repaint_fn(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.repaint.clone().unwrap_or_else(|| Arc::new(|| {}))
    }

    /// Starts queued loads and collects finished jobs.
    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if self.repaint.is_none() {
            let ctx = ctx.clone();
            self.repaint = Some(Arc::new(move || ctx.request_repaint()));
        }
        for path in std::mem::take(&mut self.pending) {
            if self.scans.iter().any(|s| s.scan.source == path)
                || self.loading.iter().any(|(p, _)| *p == path)
            {
                self.notices
                    .push(format!("{} is already open", path.display()));
                continue;
            }
            let options = self.options;
            let p = path.clone();
            let job = Job::spawn(
                &format!("loading {}", path.display()),
                self.repaint_fn(),
                // The weights with the scan, on the worker: Eq. 1 over every oracle trial took
                // the frame it arrived in.
                move |progress| {
                    let scan = load_scan(&p, options, progress)?;
                    let snr = snr_weights(&scan, &scan.oracle_trials()).map_err(|e| e.to_string());
                    Ok(LoadedScan {
                        scan: Arc::new(scan),
                        snr,
                    })
                },
            );
            self.jobs.push(job.status());
            self.loading.push((path, job));
        }
        // Scans join the list in the order they were opened, whatever order their loads finish in.
        let mut changed = false;
        while let Some((_, job)) = self.loading.first_mut() {
            let Some(result) = job.poll() else { break };
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
        if let Some(job) = self.analysis_job.as_mut() {
            if let Some(result) = job.poll() {
                match result {
                    Ok(a) => self.analysis = Some(Arc::new(a)),
                    Err(crate::Error::Cancelled) => {
                        self.analysis_error = Some("the analysis was cancelled".into())
                    }
                    Err(e) => self.analysis_error = Some(e.to_string()),
                }
                self.analysis_job = None;
            }
        }
        predictor_tab::poll(self);
        self.jobs.retain(|j| !j.is_finished());
    }

    fn dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        self.pending.extend(dropped);
    }

    /// Draws the whole window into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.poll_jobs(&ctx);
        self.dropped_files(&ctx);
        export::collect_screenshots(self, &ctx);
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("neureg");
                ui.separator();
                ui.selectable_value(&mut self.tab, Tab::Scans, "Scans");
                ui.selectable_value(&mut self.tab, Tab::Similarity, "Similarity");
                ui.selectable_value(&mut self.tab, Tab::Predictor, "Predictor");
                ui.selectable_value(&mut self.tab, Tab::Training, "Training");
                ui.selectable_value(&mut self.tab, Tab::Robustness, "Robustness");
                ui.selectable_value(&mut self.tab, Tab::Experiment, "Experiment");
            });
        });
        egui::Panel::bottom("status").show(ui, |ui| status_bar::show(self, ui));
        egui::CentralPanel::default().show(ui, |ui| {
            self.show_messages(ui);
            match self.tab {
                Tab::Scans => scans_tab::show(self, ui),
                Tab::Similarity => similarity_tab::show(self, ui),
                Tab::Predictor => predictor_tab::show(self, ui),
                Tab::Training => training_tab::show(self, ui),
                Tab::Robustness => robustness_tab::show(self, ui),
                Tab::Experiment => experiment_tab::show(self, ui),
            }
        });
    }

    fn show_messages(&mut self, ui: &mut egui::Ui) {
        let mut dismiss_error = None;
        for (k, e) in self.errors.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.colored_label(ui.visuals().error_fg_color, format!("Error: {e}"));
                if ui.small_button("Dismiss").clicked() {
                    dismiss_error = Some(k);
                }
            });
        }
        if let Some(k) = dismiss_error {
            self.errors.remove(k);
        }
    }

    fn device_name(&self) -> String {
        crate::device::describe(&self.device)
    }
}

impl eframe::App for NeuregApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let paths = self.scan_paths();
        if let Ok(text) = serde_json::to_string(&paths) {
            storage.set_string(STORAGE_KEY, text);
        }
    }
}

/// Opens the window on `workspace` and the scans it had last, or on the shipped sample scans at
/// first start.
pub fn run_window(
    device: Device,
    options: LoadOptions,
    workspace: Workspace,
) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1400.0, 900.0])
            .with_title("neureg"),
        ..Default::default()
    };
    eframe::run_native(
        "neureg",
        native,
        Box::new(move |cc| {
            let remembered: Option<Vec<PathBuf>> = cc
                .storage
                .and_then(|s| s.get_string(STORAGE_KEY))
                .and_then(|text| serde_json::from_str(&text).ok());
            // First start (nothing remembered): the shipped sample scans.
            let paths =
                remembered.unwrap_or_else(|| crate::samples::sample_scans(Some(&workspace.root)));
            Ok(Box::new(NeuregApp::new(device, options, paths, workspace)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
