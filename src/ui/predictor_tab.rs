//! The Predictor tab: fit the denoising model to a scan (live loss and
//! validation correlation, cancel keeps the best weights), open a fitted
//! predictor, see its per-neuron correlations against the ceiling, its readout
//! positions over a stimulus and Fig. 1D, and build the Neural (model) target.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use candle_core::Device;
use eframe::egui::{self, Color32, Rect, Sense};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points, VLine};

use super::NeuregApp;
use crate::data::Scan;
use crate::jobs::Job;
use crate::nn::predictor::PredictorConfig;
use crate::runs::Workspace;
use crate::samples::sample_path;
use crate::similarity::denoising::{denoising, Denoising};
use crate::similarity::ordering::spectral_order;
use crate::similarity::quality::NeuronQuality;
use crate::similarity::target::{
    common_single_images, model_target, save_target, Target, Weighting,
};
use crate::similarity::variability::Histogram;
use crate::train::predictor::{
    fit_predictor, load_predictor, read_metrics, EpochMetrics, FitConfig, LoadedPredictor,
};

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

/// A built target with its display order.
pub struct BuiltTarget {
    /// The target.
    pub target: Target,
    /// Spectral order of its rows.
    pub order: Vec<usize>,
    /// Where it was saved.
    pub path: PathBuf,
}

/// View state of the Predictor tab.
pub struct PredictorView {
    scan: usize,
    config: PredictorConfig,
    fit: FitConfig,
    folder: String,
    open_path: String,
    live: Arc<Mutex<Vec<EpochMetrics>>>,
    fit_job: Option<Job<Fitted>>,
    open_job: Option<Job<Vec<Fitted>>>,
    /// The loaded scans' names and their shipped sample predictors (looked up when the names
    /// change, not every frame).
    samples: (Vec<String>, Vec<PathBuf>),
    target_job: Option<Job<BuiltTarget>>,
    /// The predictors fitted or opened, one per scan.
    pub fitted: Vec<Fitted>,
    shown: usize,
}

impl PredictorView {
    /// Fits go into the workspace's predictors.
    pub fn new(workspace: &Workspace) -> Self {
        PredictorView {
            scan: 0,
            config: PredictorConfig::default(),
            fit: FitConfig::default(),
            folder: workspace.predictors().display().to_string(),
            open_path: String::new(),
            live: Arc::default(),
            fit_job: None,
            open_job: None,
            samples: (Vec::new(), Vec::new()),
            target_job: None,
            fitted: Vec::new(),
            shown: 0,
        }
    }
}

impl PredictorView {
    /// The settings of the next fit and the folder it goes into.
    pub fn settings_mut(&mut self) -> (&mut PredictorConfig, &mut FitConfig, &mut String) {
        (&mut self.config, &mut self.fit, &mut self.folder)
    }

    /// Shows `opened`, each in place of an earlier predictor of its scan; the last is shown.
    fn add(&mut self, opened: Vec<Fitted>) {
        for f in opened {
            self.fitted.retain(|old| old.scan.name != f.scan.name);
            self.fitted.push(f);
            self.shown = self.fitted.len() - 1;
        }
    }

    /// Whether a fit, an opening or a target is being computed.
    pub fn is_busy(&self) -> bool {
        self.fit_job.is_some() || self.open_job.is_some() || self.target_job.is_some()
    }
}

/// What the tab shows of a loaded predictor of `scan`: quality, positions and Fig. 1D.
fn inspect(loaded: &LoadedPredictor, scan: Arc<Scan>, device: &Device) -> crate::Result<Fitted> {
    Ok(Fitted {
        metrics: read_metrics(&loaded.dir)?,
        quality: loaded.quality()?,
        positions: loaded.model.readout_positions(),
        denoising: denoising(loaded, &scan, Weighting::SnrRho, device)?,
        dir: loaded.dir.clone(),
        scan,
    })
}

/// Shows the tab.
pub fn show(app: &mut NeuregApp, ui: &mut egui::Ui) {
    if app.scans.is_empty() {
        ui.label("Load a scan in the Scans tab first.");
        return;
    }
    controls(app, ui);
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("predictor")
        .show(ui, |ui| {
            ui.columns(2, |cols| {
                training_curves(app, &mut cols[0]);
                if let Some(f) = app.predictor_view.fitted.get(app.predictor_view.shown) {
                    correlations(&mut cols[1], f);
                }
            });
            if app
                .predictor_view
                .fitted
                .get(app.predictor_view.shown)
                .is_some()
            {
                ui.separator();
                ui.columns(2, |cols| {
                    positions(app, &mut cols[0]);
                    if let Some(f) = app.predictor_view.fitted.get(app.predictor_view.shown) {
                        fig_1d(&mut cols[1], &f.denoising);
                    }
                });
            }
        });
}

/// Collects the tab's finished jobs (every frame, whichever tab is shown).
pub fn poll(app: &mut NeuregApp) {
    let view = &mut app.predictor_view;
    if let Some(job) = view.fit_job.as_mut() {
        if let Some(result) = job.poll() {
            view.fit_job = None;
            match result {
                Ok(f) => view.add(vec![f]),
                Err(crate::Error::Cancelled) => app
                    .notices
                    .push("fit cancelled before its first epoch".into()),
                Err(e) => app.errors.push(e.to_string()),
            }
        }
    }
    if let Some(job) = view.open_job.as_mut() {
        if let Some(result) = job.poll() {
            view.open_job = None;
            match result {
                Ok(opened) => view.add(opened),
                Err(e) => app.errors.push(e.to_string()),
            }
        }
    }
    if let Some(job) = view.target_job.as_mut() {
        if let Some(result) = job.poll() {
            view.target_job = None;
            match result {
                Ok(t) => {
                    app.notices
                        .push(format!("target saved as {}", t.path.display()));
                    app.target = Some(Arc::new(t));
                }
                Err(e) => app.errors.push(e.to_string()),
            }
        }
    }
}

fn controls(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let names: Vec<String> = app.scans.iter().map(|s| s.scan.name.clone()).collect();
    let view = &mut app.predictor_view;
    view.scan = view.scan.min(names.len() - 1);
    let mut start = false;
    let mut open = Vec::new();
    let mut build = false;
    ui.horizontal(|ui| {
        ui.label("Scan");
        egui::ComboBox::from_id_salt("predictor scan")
            .selected_text(&names[view.scan])
            .show_ui(ui, |ui| {
                for (k, n) in names.iter().enumerate() {
                    ui.selectable_value(&mut view.scan, k, n);
                }
            });
        ui.label("channels");
        ui.add(egui::DragValue::new(&mut view.config.channels).range(1..=128))
            .on_hover_text("channels per core layer (the paper: 32-64)");
        ui.label("epochs");
        ui.add(egui::DragValue::new(&mut view.fit.max_epochs).range(1..=500));
        ui.label("batch");
        ui.add(egui::DragValue::new(&mut view.fit.batch_size).range(2..=256));
        ui.label("learning rate");
        ui.add(
            egui::DragValue::new(&mut view.fit.lr)
                .range(1e-5..=1.0)
                .speed(0.0005),
        );
        let label = ui.label("into folder");
        ui.add(egui::TextEdit::singleline(&mut view.folder).desired_width(160.0))
            .labelled_by(label.id);
        let busy = view.fit_job.is_some();
        start = ui
            .add_enabled(!busy, egui::Button::new("Fit predictor"))
            .on_hover_text("A folder that holds this fit already resumes it")
            .clicked();
    });
    ui.horizontal(|ui| {
        let label = ui.label("Predictor folder:");
        ui.add(
            egui::TextEdit::singleline(&mut view.open_path)
                .desired_width(300.0)
                .hint_text("neureg-predictors/scan_1"),
        )
        .labelled_by(label.id);
        let opening = view.open_job.is_some();
        if ui.add_enabled(!opening, egui::Button::new("Open")).clicked()
            && !view.open_path.trim().is_empty()
        {
            open = vec![PathBuf::from(view.open_path.trim())];
        }
        if view.samples.0 != names {
            view.samples = (names.clone(), sample_predictors(&names, &app.workspace));
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
        let ready = !view.fitted.is_empty() && view.target_job.is_none();
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
        start_fit(app);
    }
    if !open.is_empty() {
        open_predictors(app, open);
    }
    if build {
        build_target(app);
    }
}

fn start_fit(app: &mut NeuregApp) {
    let view = &mut app.predictor_view;
    let scan = app.scans[view.scan].scan.clone();
    let dir = PathBuf::from(view.folder.trim()).join(&scan.name);
    let (config, fit, device) = (view.config.clone(), view.fit.clone(), app.device.clone());
    let live = view.live.clone();
    if let Ok(mut l) = live.lock() {
        // A broken log shows nothing here; the fit itself fails naming it.
        *l = read_metrics(&dir).unwrap_or_default();
    }
    let job = Job::spawn(
        &format!("fitting {}", scan.name),
        app.repaint_fn(),
        move |progress| {
            let mut on_epoch = |m: &EpochMetrics| {
                if let Ok(mut l) = live.lock() {
                    l.push(m.clone());
                }
            };
            fit_predictor(&scan, &config, &fit, &dir, &device, progress, &mut on_epoch)?;
            progress.stage("Fig. 1D", 1);
            inspect(&load_predictor(&dir, &device)?, scan, &device)
        },
    );
    app.jobs.push(job.status());
    app.predictor_view.fit_job = Some(job);
}

/// The shipped sample predictors of the scans named in `names` (none when this build's source tree
/// no longer has them).
fn sample_predictors(names: &[String], workspace: &Workspace) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| sample_path("predictors", Some(&workspace.root)).join(n))
        .filter(|d| d.join("meta.json").is_file())
        .collect()
}

/// Opens the predictors in `dirs`, each with the loaded scan it was fitted to.
fn open_predictors(app: &mut NeuregApp, dirs: Vec<PathBuf>) {
    let device = app.device.clone();
    let scans: Vec<Arc<Scan>> = app.scans.iter().map(|s| s.scan.clone()).collect();
    let what = match dirs.as_slice() {
        [one] => one.display().to_string(),
        many => format!("{} predictors", many.len()),
    };
    let job = Job::spawn(
        &format!("opening {what}"),
        app.repaint_fn(),
        move |progress| {
            progress.stage("opening predictors", dirs.len() as u64);
            let mut opened = Vec::with_capacity(dirs.len());
            for dir in &dirs {
                progress.check()?;
                let loaded = load_predictor(dir, &device)?;
                let meta = &loaded.meta;
                let scan = scans
                    .iter()
                    .find(|s| {
                        s.name == meta.scan
                            && s.unit_ids == meta.unit_ids
                            && loaded.check_scan(s).is_ok()
                    })
                    .ok_or_else(|| {
                        crate::Error::file(
                            dir.display(),
                            format!(
                                "was fitted to {} ({}), which is not loaded (a scan of that name \
                                 with other responses is another recording); load it first",
                                meta.scan,
                                meta.scan_path.display()
                            ),
                        )
                    })?;
                opened.push(inspect(&loaded, scan.clone(), &device)?);
                progress.advance(1);
            }
            Ok(opened)
        },
    );
    app.jobs.push(job.status());
    app.predictor_view.open_job = Some(job);
}

fn build_target(app: &mut NeuregApp) {
    let view = &app.predictor_view;
    let dirs: Vec<PathBuf> = view.fitted.iter().map(|f| f.dir.clone()).collect();
    let scans: Vec<Arc<Scan>> = view.fitted.iter().map(|f| f.scan.clone()).collect();
    let path = app.export_dir.join("target_neural_model.npy");
    let device = app.device.clone();
    let job = Job::spawn("building the target", app.repaint_fn(), move |progress| {
        let predictors = dirs
            .iter()
            .map(|d| load_predictor(d, &device))
            .collect::<crate::Result<Vec<_>>>()?;
        let refs: Vec<&Scan> = scans.iter().map(|s| s.as_ref()).collect();
        let images = common_single_images(&refs)?;
        let target = model_target(&predictors, &images, Weighting::SnrRho, &device, progress)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| crate::Error::io(parent, e))?;
        }
        save_target(&path, &target)?;
        let order = spectral_order(&target.matrix);
        Ok(BuiltTarget {
            target,
            order,
            path,
        })
    });
    app.jobs.push(job.status());
    app.predictor_view.target_job = Some(job);
}

fn training_curves(app: &NeuregApp, ui: &mut egui::Ui) {
    let view = &app.predictor_view;
    let metrics: Vec<EpochMetrics> = if view.fit_job.is_some() {
        view.live.lock().map(|l| l.clone()).unwrap_or_default()
    } else {
        view.fitted
            .get(view.shown)
            .map(|f| f.metrics.clone())
            .unwrap_or_default()
    };
    ui.strong("Training");
    if metrics.is_empty() {
        ui.weak("Fit a predictor to see its training loss and validation correlation per epoch.");
        return;
    }
    let curve = |f: fn(&EpochMetrics) -> f64| -> PlotPoints {
        metrics.iter().map(|m| [m.epoch as f64, f(m)]).collect()
    };
    ui.columns(2, |cols| {
        Plot::new("train loss")
            .height(200.0)
            .x_axis_label("epoch")
            .legend(Legend::default())
            .show(&mut cols[0], |p| {
                p.line(Line::new("training loss", curve(|m| m.train_loss)))
            });
        Plot::new("validation correlation")
            .height(200.0)
            .x_axis_label("epoch")
            .legend(Legend::default())
            .show(&mut cols[1], |p| {
                p.line(Line::new(
                    "validation correlation",
                    curve(|m| m.validation_correlation as f64),
                ))
            });
    });
}

fn correlations(ui: &mut egui::Ui, f: &Fitted) {
    let q = &f.quality;
    ui.strong(format!(
        "{}: test correlation per neuron (mean rho {:.3}; ceiling {:.3}; {} of {} flagged)",
        f.scan.name,
        q.mean_rho(),
        q.mean_ceiling(),
        q.flagged.len(),
        q.rho.len()
    ));
    let h = Histogram::new(&q.rho, -0.2, 1.0, 24);
    let width = h.edges[1] - h.edges[0];
    let bars: Vec<Bar> = h
        .counts
        .iter()
        .zip(&h.edges)
        .map(|(&c, &lo)| Bar::new(lo + width / 2.0, c as f64).width(width))
        .collect();
    Plot::new("rho histogram")
        .height(200.0)
        .x_axis_label("single-trial correlation rho")
        .y_axis_label("neurons")
        .legend(Legend::default())
        .show(ui, |p| {
            p.bar_chart(BarChart::new("neurons", bars));
            p.vline(VLine::new("mean oracle ceiling", q.mean_ceiling() as f64).color(Color32::RED));
        });
}

fn positions(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let Some(f) = app.predictor_view.fitted.get(app.predictor_view.shown) else {
        return;
    };
    let scan = f.scan.clone();
    ui.strong("Readout positions over a stimulus");
    let Some(pos) = &f.positions else {
        ui.weak("This predictor has a factorised readout: no positions.");
        return;
    };
    let Some((&id, pixels)) = scan.images.iter().next() else {
        return;
    };
    let (h, w) = scan.image_shape;
    let texture = app.stimuli.get(ui.ctx(), id, pixels, (h, w));
    let width = ui.available_width().min(520.0);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width, width * h as f32 / w as f32),
        Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    for p in pos {
        // [-1, 1] spans the first to the last pixel centre.
        let x = rect.left() + ((p[0] + 1.0) / 2.0 * (w - 1) as f32 + 0.5) / w as f32 * rect.width();
        let y = rect.top() + ((p[1] + 1.0) / 2.0 * (h - 1) as f32 + 0.5) / h as f32 * rect.height();
        painter.circle_filled(egui::pos2(x, y), 2.5, Color32::from_rgb(230, 60, 40));
    }
    ui.weak(format!(
        "{} neurons of {}, image {id}",
        pos.len(),
        scan.name
    ));
}

fn fig_1d(ui: &mut egui::Ui, d: &Denoising) {
    ui.strong(format!("Fig. 1D: {} oracle images of {}", d.images, d.scan));
    let points = |s: &crate::similarity::denoising::Scatter| -> PlotPoints {
        s.x.iter()
            .zip(&s.y)
            .map(|(&x, &y)| [x as f64, y as f64])
            .collect()
    };
    Plot::new("fig 1d")
        .height(260.0)
        .x_axis_label("oracle similarity")
        .y_axis_label("similarity")
        .legend(Legend::default())
        .show(ui, |p| {
            p.points(
                Points::new(
                    format!("model, r = {:.2}", d.model_vs_oracle.r),
                    points(&d.model_vs_oracle),
                )
                .radius(2.0),
            );
            p.points(
                Points::new(
                    format!("single trial, r = {:.2}", d.single_vs_oracle.r),
                    points(&d.single_vs_oracle),
                )
                .radius(2.0),
            );
        });
    if let (Some(m), Some(s)) = (&d.model_vs_truth, &d.single_vs_truth) {
        ui.label(format!(
            "Against the noise-free similarity (synthetic scan): model r = {:.3}, single trial r = {:.3}",
            m.r, s.r
        ));
    }
}
