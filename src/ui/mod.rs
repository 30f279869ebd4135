//! The window: one view per tab (each owns its state, all share [`Shared`]), a status bar,
//! widgets, the saved settings. The tabs hold view state and start jobs; every computation
//! happens in the library on a worker thread.

pub mod experiment_tab;
mod export;
pub mod frame_time;
pub mod inspect;
pub mod predictor;
pub mod robustness;
pub mod scans_tab;
pub mod shared;
pub mod similarity_tab;
pub mod state;
mod status_bar;
pub mod training;
pub mod view;
pub mod widgets;

use std::path::PathBuf;

use candle_core::Device;
use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::data::LoadOptions;
use crate::runs::Workspace;
use shared::{RunList, Shared, REFRESH_SECONDS};
use state::State;
use view::View;

/// The tabs, in the order of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tab {
    /// Load and inspect scans.
    #[default]
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
    /// Per-layer similarity of trained networks against the brain's.
    Inspect,
}

/// The whole window's state.
pub struct NeuregApp {
    /// The tab shown.
    pub tab: Tab,
    /// What the tabs share.
    pub shared: Shared,
    /// The Scans tab.
    pub scans_view: scans_tab::ScansView,
    /// The Similarity tab.
    pub similarity_view: similarity_tab::SimilarityView,
    /// The Predictor tab.
    pub predictor_view: predictor::PredictorView,
    /// The Training tab.
    pub training_view: training::TrainingView,
    /// The Robustness tab.
    pub robustness_view: robustness::RobustnessView,
    /// The Experiment tab.
    pub experiment_view: experiment_tab::ExperimentView,
    /// The Inspect tab.
    pub inspect_view: inspect::InspectView,
}

impl NeuregApp {
    /// A window on `workspace` that will load `paths` on its first frame.
    pub fn new(
        device: Device,
        options: LoadOptions,
        paths: Vec<PathBuf>,
        workspace: Workspace,
    ) -> Self {
        let mut shared = Shared::new(device, options, workspace);
        for p in paths {
            shared.open(p);
        }
        NeuregApp {
            tab: Tab::Scans,
            scans_view: Default::default(),
            similarity_view: Default::default(),
            predictor_view: predictor::PredictorView::new(&shared.workspace),
            training_view: training::TrainingView::new(&shared.workspace),
            robustness_view: Default::default(),
            experiment_view: experiment_tab::ExperimentView::new(&shared.workspace),
            inspect_view: Default::default(),
            shared,
        }
    }

    /// A window as `state` left it: its scans, tab, folders and every tab's settings (the
    /// shipped sample scans when it has none remembered).
    pub fn restored(
        device: Device,
        options: LoadOptions,
        state: State,
        workspace: Workspace,
    ) -> Self {
        let paths = state
            .scans
            .clone()
            .unwrap_or_else(|| crate::samples::sample_scans(Some(&workspace.root)));
        let mut app = NeuregApp::new(device, options, paths, workspace);
        state.apply(&mut app);
        app
    }

    /// What the window saves: see [`State`].
    pub fn state(&self) -> State {
        State::of(self)
    }

    /// Queues a scan folder or zip for loading.
    pub fn open(&mut self, path: PathBuf) {
        self.shared.open(path);
    }

    /// Whether any job is still running.
    pub fn is_busy(&self) -> bool {
        self.shared.is_busy() || self.training_view.is_busy()
    }

    /// The cell of the oracle matrices under the pointer (display order), if any.
    pub fn similarity_view_hovered(&self) -> Option<(usize, usize)> {
        self.similarity_view.hovered
    }

    /// The pinned cell of the oracle matrices (display order), if any.
    pub fn similarity_view_pinned(&self) -> Option<(usize, usize)> {
        self.similarity_view.pinned
    }

    /// The predictors fitted or opened in the Predictor tab: (scan, folder).
    pub fn fitted_predictors(&self) -> Vec<(String, PathBuf)> {
        self.predictor_view
            .fitted
            .iter()
            .map(|f| (f.scan.name.clone(), f.dir.clone()))
            .collect()
    }

    /// Moves the window to `workspace`: new runs, predictors, experiments and exports default
    /// there, and the run list shows its runs.
    pub fn switch_workspace(&mut self, workspace: Workspace) {
        self.shared.export_dir = workspace.exports();
        self.shared.runs = RunList::new(RunList::default_root(&workspace));
        self.shared.workspace = workspace;
        let (tabs, shared) = self.tabs();
        for (_, _, view) in tabs {
            view.workspace_changed(shared);
        }
    }

    /// Every tab, its label and its view, in the order of the tab bar, and the shared state:
    /// the one list that drives the bar, the dispatch, `poll` and workspace switches.
    fn tabs(&mut self) -> ([(Tab, &'static str, &mut dyn View); 7], &mut Shared) {
        let NeuregApp {
            scans_view,
            similarity_view,
            predictor_view,
            training_view,
            robustness_view,
            experiment_view,
            inspect_view,
            shared,
            ..
        } = self;
        (
            [
                (Tab::Scans, "Scans", scans_view),
                (Tab::Similarity, "Similarity", similarity_view),
                (Tab::Predictor, "Predictor", predictor_view),
                (Tab::Training, "Training", training_view),
                (Tab::Robustness, "Robustness", robustness_view),
                (Tab::Experiment, "Experiment", experiment_view),
                (Tab::Inspect, "Inspect", inspect_view),
            ],
            shared,
        )
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
        for p in dropped {
            self.shared.open(p);
        }
    }

    /// Draws the whole window into `ui`, timing it.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = std::time::Instant::now();
        self.draw(ui);
        self.shared.frames.record(started.elapsed());
    }

    /// Draws the whole window into `ui`.
    fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.shared.jobs.has_repaint() {
            let repaint = ctx.clone();
            self.shared
                .jobs
                .set_repaint(std::sync::Arc::new(move || repaint.request_repaint()));
        }
        self.dropped_files(&ctx);
        self.shared.poll_scans();
        let now = ui.input(|i| i.time);
        let Shared { runs, errors, .. } = &mut self.shared;
        runs.refresh_if_due(now, errors);
        // Every tab collects its jobs, whichever is shown (a view's poll may start work).
        let (tabs, shared) = self.tabs();
        for (_, _, view) in tabs {
            view.poll(shared);
        }
        if self.is_busy() {
            // Keep re-reading the run folders and the experiment while work writes them.
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(REFRESH_SECONDS));
        }
        let labels = self.tabs().0.map(|(tab, label, _)| (tab, label));
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("neureg");
                ui.separator();
                for (tab, label) in labels {
                    ui.selectable_value(&mut self.tab, tab, label);
                }
            });
        });
        let mut switch = None;
        egui::Panel::bottom("status").show(ui, |ui| {
            switch = status_bar::show(&mut self.shared, ui);
        });
        if let Some(workspace) = switch {
            self.switch_workspace(workspace);
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.show_messages(ui);
            let shown = self.tab;
            let (tabs, shared) = self.tabs();
            if let Some((_, _, view)) = tabs.into_iter().find(|(tab, ..)| *tab == shown) {
                view.ui(ui, shared);
            }
        });
    }

    fn show_messages(&mut self, ui: &mut egui::Ui) {
        let mut dismiss_error = None;
        for (k, e) in self.shared.errors.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.colored_label(ui.visuals().error_fg_color, format!("Error: {e}"));
                if ui.small_button("Dismiss").clicked() {
                    dismiss_error = Some(k);
                }
            });
        }
        if let Some(k) = dismiss_error {
            self.shared.errors.remove(k);
        }
    }
}

impl eframe::App for NeuregApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.state().save(storage);
    }
}

/// Opens the window on `workspace` as it was left (the shipped sample scans at first start).
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
            let state = cc.storage.map(State::load).unwrap_or_default();
            Ok(Box::new(NeuregApp::restored(
                device, options, state, workspace,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
