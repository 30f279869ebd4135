//! The Predictor tab: fit the denoising model to a scan (live loss and
//! validation correlation, cancel keeps the best weights), open a fitted
//! predictor, see its per-neuron correlations against the ceiling, its readout
//! positions over a stimulus and Fig. 1D, and build the Neural (model) target.

mod plots;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use candle_core::Device;
use eframe::egui;
use serde::{Deserialize, Serialize};

use super::shared::{Shared, ShownTarget};
use super::view::{Cx, View};
use crate::data::Scan;
use crate::nn::models::predictor::PredictorConfig;
use crate::pipeline::predictors::{open_predictors as pair_predictors, ScanSource};
use crate::pipeline::target::{build_target as pipeline_build_target, TargetImages, TargetRequest};
use crate::runs::predictor::{
    load_predictor, read_metrics, EpochMetrics, FitConfig, LoadedPredictor,
};
use crate::runs::{PredictorDir, Workspace};
use crate::samples::sample_path;
use crate::similarity::denoising::{denoising, Denoising};
use crate::similarity::quality::{stored_quality, NeuronQuality};
use crate::similarity::target::Weighting;
use crate::train::predictor::fit_predictor;
use plots::{correlations, fig_1d, positions, training_curves};

/// A fitted predictor as the tab shows it.
pub struct Fitted {
    /// Its folder.
    pub dir: PathBuf,
    /// The scan it was fitted to.
    pub scan: Arc<Scan>,
    /// Its epochs.
    pub metrics: Vec<EpochMetrics>,
    /// Test-tier quality.
    pub quality: NeuronQuality,
    /// Readout positions in [-1, 1] (Gaussian readout only).
    pub positions: Option<Vec<[f32; 2]>>,
    /// Fig. 1D on the scan's oracle images.
    pub denoising: Denoising,
}

/// What the Predictor tab remembers between starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The scan to fit (index among the loaded scans).
    pub scan: usize,
    /// Architecture of the next fit.
    pub config: PredictorConfig,
    /// Fit settings.
    pub fit: FitConfig,
    /// Folder the fits go into.
    pub folder: String,
    /// A predictor folder to open, as typed.
    pub open_path: String,
}

/// View state of the Predictor tab.
pub struct PredictorView {
    /// The settings.
    pub settings: Settings,
    live: Arc<Mutex<Vec<EpochMetrics>>>,
    /// The loaded scans' names and their shipped sample predictors (looked up when the names
    /// change, not every frame).
    samples: (Vec<String>, Vec<PathBuf>),
    /// The predictors fitted or opened, one per scan.
    pub fitted: Vec<Fitted>,
    shown: usize,
}

/// Job keys.
const FIT: &str = "predictor.fit";
const OPEN: &str = "predictor.open";
const TARGET: &str = "predictor.target";

impl PredictorView {
    /// Fits go into the workspace's predictors.
    pub fn new(workspace: &Workspace) -> Self {
        PredictorView {
            settings: Settings {
                folder: workspace.predictors().display().to_string(),
                ..Settings::default()
            },
            live: Arc::default(),
            samples: (Vec::new(), Vec::new()),
            fitted: Vec::new(),
            shown: 0,
        }
    }

    /// Shows `opened`, each in place of an earlier predictor of its scan; the last is shown.
    fn add(&mut self, opened: Vec<Fitted>) {
        for f in opened {
            self.fitted.retain(|old| old.scan.name != f.scan.name);
            self.fitted.push(f);
            self.shown = self.fitted.len() - 1;
        }
    }
}

/// What the tab shows of a loaded predictor of `scan`: quality, positions and Fig. 1D.
fn inspect(loaded: &LoadedPredictor, scan: Arc<Scan>, device: &Device) -> crate::Result<Fitted> {
    Ok(Fitted {
        metrics: read_metrics(&loaded.dir)?,
        quality: stored_quality(loaded)?,
        positions: loaded.model.readout_positions(),
        denoising: denoising(loaded, &scan, Weighting::SnrRho, device)?,
        dir: loaded.dir.clone(),
        scan,
    })
}

/// Shows the tab.
fn show(cx: &mut Cx<PredictorView>, ui: &mut egui::Ui) {
    if cx.shared.scans.is_empty() {
        ui.label("Load a scan in the Scans tab first.");
        return;
    }
    controls(cx, ui);
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("predictor")
        .show(ui, |ui| {
            let view = &*cx.view;
            let shown = view.fitted.get(view.shown);
            let metrics: Vec<EpochMetrics> = if cx.shared.jobs.is_running(FIT) {
                view.live.lock().map(|l| l.clone()).unwrap_or_default()
            } else {
                shown.map(|f| f.metrics.clone()).unwrap_or_default()
            };
            ui.columns(2, |cols| {
                training_curves(&mut cols[0], &metrics);
                if let Some(f) = shown {
                    correlations(&mut cols[1], f);
                }
            });
            if let Some(f) = shown {
                ui.separator();
                ui.columns(2, |cols| {
                    positions(&mut cols[0], f, &mut cx.shared.stimuli);
                    fig_1d(&mut cols[1], &f.denoising);
                });
            }
        });
}

impl PredictorView {
    /// Collects the tab's finished jobs.
    fn collect(&mut self, shared: &mut Shared) {
        match shared.jobs.take::<Fitted>(FIT) {
            Some(Err(crate::Error::Cancelled)) => shared
                .notices
                .push("fit cancelled before its first epoch".into()),
            Some(result) => {
                if let Some(f) = shared.report(result) {
                    self.add(vec![f]);
                }
            }
            None => {}
        }
        if let Some(opened) = shared.jobs.take(OPEN).and_then(|r| shared.report(r)) {
            self.add(opened);
        }
        if let Some(t) = shared
            .jobs
            .take::<ShownTarget>(TARGET)
            .and_then(|r| shared.report(r))
        {
            shared
                .notices
                .push(format!("target saved as {}", t.built.path.display()));
            shared.target = Some(Arc::new(t));
        }
    }
}

fn controls(cx: &mut Cx<PredictorView>, ui: &mut egui::Ui) {
    let names: Vec<String> = cx
        .shared
        .scans
        .iter()
        .map(|s| s.scan.name.clone())
        .collect();
    let jobs = &cx.shared.jobs;
    let (fitting, opening, building) = (
        jobs.is_running(FIT),
        jobs.is_running(OPEN),
        jobs.is_running(TARGET),
    );
    let view = &mut *cx.view;
    let set = &mut view.settings;
    set.scan = set.scan.min(names.len() - 1);
    let mut start = false;
    let mut open = Vec::new();
    let mut build = false;
    ui.horizontal(|ui| {
        ui.label("Scan");
        egui::ComboBox::from_id_salt("predictor scan")
            .selected_text(&names[set.scan])
            .show_ui(ui, |ui| {
                for (k, n) in names.iter().enumerate() {
                    ui.selectable_value(&mut set.scan, k, n);
                }
            });
        ui.label("channels");
        ui.add(egui::DragValue::new(&mut set.config.channels).range(1..=128))
            .on_hover_text("channels per core layer (the paper: 32-64)");
        ui.label("epochs");
        ui.add(egui::DragValue::new(&mut set.fit.max_epochs).range(1..=500));
        ui.label("batch");
        ui.add(egui::DragValue::new(&mut set.fit.batch_size).range(2..=256));
        ui.label("learning rate");
        ui.add(
            egui::DragValue::new(&mut set.fit.lr)
                .range(1e-5..=1.0)
                .speed(0.0005),
        );
        let label = ui.label("into folder");
        ui.add(egui::TextEdit::singleline(&mut set.folder).desired_width(160.0))
            .labelled_by(label.id);
        start = ui
            .add_enabled(!fitting, egui::Button::new("Fit predictor"))
            .on_hover_text("A folder that holds this fit already resumes it")
            .clicked();
    });
    ui.horizontal(|ui| {
        let label = ui.label("Predictor folder:");
        ui.add(
            egui::TextEdit::singleline(&mut set.open_path)
                .desired_width(300.0)
                .hint_text("neureg-predictors/scan_1"),
        )
        .labelled_by(label.id);
        if ui.add_enabled(!opening, egui::Button::new("Open")).clicked()
            && !set.open_path.trim().is_empty()
        {
            open = vec![PathBuf::from(set.open_path.trim())];
        }
        if view.samples.0 != names {
            view.samples = (names.clone(), sample_predictors(&names, &cx.shared.workspace));
        }
        if !view.samples.1.is_empty()
            && ui
                .add_enabled(!opening, egui::Button::new("Open sample predictors"))
                .on_hover_text(
                    "The predictors shipped in sample_data/predictors, fitted to the loaded sample scans",
                )
                .clicked()
        {
            open = view.samples.1.clone();
        }
        ui.separator();
        let ready = !view.fitted.is_empty() && !building;
        build = ui
            .add_enabled(ready, egui::Button::new("Build target"))
            .on_hover_text(
                "Neural (model) target (Eq. 6) from every predictor shown here, on their scans' single-shown images",
            )
            .clicked();
        if !view.fitted.is_empty() {
            ui.separator();
            ui.label("Show:");
            for (k, f) in view.fitted.iter().enumerate() {
                ui.selectable_value(&mut view.shown, k, &f.scan.name);
            }
        }
    });
    if start {
        start_fit(cx);
    }
    if !open.is_empty() {
        open_predictors(cx, open);
    }
    if build {
        build_target(cx);
    }
}

fn start_fit(cx: &mut Cx<PredictorView>) {
    let set = &cx.view.settings;
    let scan = cx.shared.scans[set.scan].scan.clone();
    let dir = PathBuf::from(set.folder.trim()).join(&scan.name);
    let (config, fit, device) = (
        set.config.clone(),
        set.fit.clone(),
        cx.shared.device.clone(),
    );
    let live = cx.view.live.clone();
    if let Ok(mut l) = live.lock() {
        // A broken log shows nothing here; the fit itself fails naming it.
        *l = read_metrics(&dir).unwrap_or_default();
    }
    cx.shared
        .jobs
        .spawn(FIT, &format!("fitting {}", scan.name), move |progress| {
            let mut on_epoch = |m: &EpochMetrics| {
                if let Ok(mut l) = live.lock() {
                    l.push(m.clone());
                }
            };
            fit_predictor(&scan, &config, &fit, &dir, &device, progress, &mut on_epoch)?;
            progress.stage("Fig. 1D", 1);
            inspect(&load_predictor(&dir, &device)?, scan, &device)
        });
}

/// The shipped sample predictors of the scans named in `names` (none when this build's source tree
/// no longer has them).
fn sample_predictors(names: &[String], workspace: &Workspace) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| sample_path("predictors", Some(&workspace.root)).join(n))
        .filter(|d| PredictorDir(d).is_predictor())
        .collect()
}

/// Opens the predictors in `dirs`, each with the loaded scan it was fitted to.
fn open_predictors(cx: &mut Cx<PredictorView>, dirs: Vec<PathBuf>) {
    let device = cx.shared.device.clone();
    let scans = cx.shared.scan_handles();
    let what = match dirs.as_slice() {
        [one] => one.display().to_string(),
        many => format!("{} predictors", many.len()),
    };
    cx.shared
        .jobs
        .spawn(OPEN, &format!("opening {what}"), move |progress| {
            progress.stage("opening predictors", dirs.len() as u64);
            let source = ScanSource {
                loaded: &scans,
                read: None,
            };
            pair_predictors(&dirs, source, &device, progress)?
                .into_iter()
                .map(|p| {
                    progress.advance(1);
                    inspect(&p.predictor, p.scan, &device)
                })
                .collect::<crate::Result<Vec<Fitted>>>()
        });
}

/// Builds the Neural (model) target from every predictor shown, into the workspace's targets.
fn build_target(cx: &mut Cx<PredictorView>) {
    let request = TargetRequest {
        predictors: cx.view.fitted.iter().map(|f| f.dir.clone()).collect(),
        images: TargetImages::Common,
        weighting: Weighting::SnrRho,
        data: false,
        out: cx.shared.workspace.targets().join("neural_model.npy"),
    };
    let scans: Vec<Arc<Scan>> = cx.view.fitted.iter().map(|f| f.scan.clone()).collect();
    let device = cx.shared.device.clone();
    cx.shared
        .jobs
        .spawn(TARGET, "building the target", move |progress| {
            let source = ScanSource {
                loaded: &scans,
                read: None,
            };
            pipeline_build_target(&request, source, &device, progress).map(ShownTarget::of)
        });
}

impl View for PredictorView {
    fn poll(&mut self, shared: &mut Shared) {
        self.collect(shared);
    }

    fn workspace_changed(&mut self, shared: &Shared) {
        self.settings.folder = shared.workspace.predictors().display().to_string();
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        show(&mut Cx { view: self, shared }, ui)
    }
}
