//! The Experiment tab: open a plan, a preset or an experiment folder, start and pause it, see
//! its units' states and the report's opening lines and figures fill in as units finish. Unit
//! states and the report are re-read once a second, never in every frame.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use eframe::egui;

use crate::experiment::report::write_report;
use crate::experiment::unit::{run_all, statuses, UnitState, UnitStatus};
use crate::experiment::{Experiment, Plan, Preset};
use crate::jobs::Job;
use crate::runs::Workspace;
use crate::samples::sample_path;
use crate::ui::NeuregApp;

/// Seconds between re-reads of the experiment folder.
const REFRESH_SECONDS: f64 = 1.0;

/// A report figure shown in the tab.
struct Figure {
    caption: String,
    texture: egui::TextureHandle,
}

/// The tab's state.
pub struct ExperimentView {
    /// A plan file (.toml, .json) or an experiment folder, as typed.
    pub source: String,
    /// Where a plan file's experiment goes.
    pub folder: String,
    /// The experiment open.
    pub experiment: Option<Experiment>,
    /// Its units' states, as last read.
    pub units: Vec<UnitStatus>,
    /// The report's opening lines, as last read.
    pub summary: Vec<String>,
    figures: Vec<Figure>,
    report_stamp: Option<SystemTime>,
    job: Option<Job<()>>,
    last_refresh: f64,
}

impl ExperimentView {
    /// Opens the shipped lecture experiment when there is one; new experiments go into the
    /// workspace.
    pub fn new(workspace: &Workspace) -> Self {
        let shipped = sample_path("experiments/lecture", Some(&workspace.root));
        ExperimentView {
            source: shipped.display().to_string(),
            folder: workspace
                .experiments()
                .join("lecture")
                .display()
                .to_string(),
            experiment: Experiment::open(&shipped).ok(),
            units: Vec::new(),
            summary: Vec::new(),
            figures: Vec::new(),
            report_stamp: None,
            job: None,
            last_refresh: f64::NEG_INFINITY,
        }
    }
}

impl ExperimentView {
    /// Whether the experiment is running.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Opens what `source` names: an experiment folder, or a plan whose experiment goes to
    /// `folder`.
    fn open(&mut self) -> crate::Result<()> {
        let source = PathBuf::from(self.source.trim());
        let exp = if Experiment::plan_path(&source).is_file() {
            Experiment::open(&source)?
        } else {
            Experiment::create(Path::new(self.folder.trim()), &Plan::read(&source)?)?
        };
        self.set(exp);
        Ok(())
    }

    fn set(&mut self, exp: Experiment) {
        self.experiment = Some(exp);
        self.report_stamp = None;
        self.figures.clear();
        self.summary.clear();
        self.last_refresh = f64::NEG_INFINITY;
    }

    /// Re-reads the units' states and, when the report changed, its lines and figures.
    fn refresh(&mut self, ctx: &egui::Context) {
        let Some(exp) = &self.experiment else { return };
        self.units = statuses(exp);
        let report = exp.report_dir();
        let stamp = std::fs::metadata(report.join("report.md"))
            .and_then(|m| m.modified())
            .ok();
        if stamp == self.report_stamp {
            return;
        }
        self.report_stamp = stamp;
        self.summary = std::fs::read_to_string(report.join("numbers.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["summary"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default();
        self.figures = figure_files(&report)
            .into_iter()
            .filter_map(|(path, caption)| {
                let img = image::open(&path).ok()?.to_rgba8();
                let size = [img.width() as usize, img.height() as usize];
                let colour = egui::ColorImage::from_rgba_unmultiplied(size, img.as_raw());
                let texture = ctx.load_texture(
                    path.display().to_string(),
                    colour,
                    egui::TextureOptions::LINEAR,
                );
                Some(Figure { caption, texture })
            })
            .collect();
    }
}

/// The report's figures in the order report.md shows them, with their captions.
fn figure_files(report: &Path) -> Vec<(PathBuf, String)> {
    let Ok(md) = std::fs::read_to_string(report.join("report.md")) else {
        return Vec::new();
    };
    md.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("![")?;
            let (caption, file) = rest.split_once("](")?;
            Some((report.join(file.trim_end_matches(')')), caption.to_string()))
        })
        .collect()
}

/// Collects a finished run and re-reads the folder once a second.
pub fn poll(app: &mut NeuregApp, ctx: &egui::Context, now: f64) {
    let view = &mut app.experiment_view;
    let mut refresh = now - view.last_refresh >= REFRESH_SECONDS;
    if let Some(job) = view.job.as_mut() {
        if let Some(result) = job.poll() {
            match result {
                Ok(()) | Err(crate::Error::Cancelled) => {}
                Err(crate::Error::Paused(why)) => app.notices.push(format!("paused: {why}")),
                Err(e) => app.errors.push(e.to_string()),
            }
            view.job = None;
            refresh = true;
        }
    }
    if refresh {
        view.refresh(ctx);
        view.last_refresh = now;
    }
}

/// Draws the tab.
pub fn show(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let now = ui.input(|i| i.time);
    if app.experiment_view.is_busy() {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs_f64(REFRESH_SECONDS));
    }
    poll(app, &ui.ctx().clone(), now);
    egui::Panel::left("experiment_controls")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| controls(app, ui));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| report(&app.experiment_view, ui));
    });
}

fn controls(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let repaint = app.repaint_fn();
    let device = app.device.clone();
    let view = &mut app.experiment_view;
    ui.heading("Experiment");
    ui.label("Plan (.toml, .json) or experiment folder");
    ui.text_edit_singleline(&mut view.source);
    ui.label("Experiment folder for a plan");
    ui.text_edit_singleline(&mut view.folder);
    let idle = view.job.is_none();
    ui.horizontal(|ui| {
        if ui.add_enabled(idle, egui::Button::new("Open")).clicked() {
            if let Err(e) = view.open() {
                app.errors.push(e.to_string());
            }
        }
        if ui
            .add_enabled(idle, egui::Button::new("Lecture preset"))
            .on_hover_text("None, Neural (model), Neural (data), Shuffle x 3 seeds on the samples")
            .clicked()
        {
            let plan = Plan::preset(Preset::Lecture, &sample_path("", Some(&app.workspace.root)));
            match Experiment::create(Path::new(view.folder.trim()), &plan) {
                Ok(exp) => view.set(exp),
                Err(e) => app.errors.push(e.to_string()),
            }
        }
    });
    let Some(exp) = view.experiment.clone() else {
        ui.label("Open a plan or an experiment folder, or start from the lecture preset.");
        return;
    };
    ui.separator();
    ui.label(format!("{} in {}", exp.plan.name, exp.dir.display()));
    ui.horizontal(|ui| {
        if ui.add_enabled(idle, egui::Button::new("Start")).clicked() {
            let e = exp.clone();
            let job = Job::spawn(
                &format!("experiment {}", exp.plan.name),
                repaint,
                move |p| run_all(&e, &device, p, &mut |_, _| {}).map(|_| ()),
            );
            app.jobs.push(job.status());
            view.job = Some(job);
        }
        if let Some(job) = &view.job {
            if ui
                .button("Pause")
                .on_hover_text("Checkpoint the running unit and stop; Start resumes it")
                .clicked()
            {
                job.status().pause();
            }
            let (stage, fraction) = job.status().progress();
            ui.add(egui::ProgressBar::new(fraction).text(stage));
        } else if ui.button("Rebuild report").clicked() {
            if let Err(e) = write_report(&exp) {
                app.errors.push(e.to_string());
            }
            view.last_refresh = f64::NEG_INFINITY;
        }
    });
    let done = view
        .units
        .iter()
        .filter(|u| u.state == UnitState::Done)
        .count();
    ui.label(format!("{done} of {} units done", view.units.len()));
    egui::Grid::new("experiment_units")
        .striped(true)
        .show(ui, |ui| {
            for u in &view.units {
                ui.label(u.unit.index.to_string());
                ui.label(&u.unit.name);
                ui.label(u.describe(exp.plan.training.epochs));
                ui.end_row();
            }
        });
}

fn report(view: &ExperimentView, ui: &mut egui::Ui) {
    if view.summary.is_empty() {
        ui.label("No report yet: it is written as units finish.");
        return;
    }
    ui.heading("What the numbers show");
    for line in &view.summary {
        ui.label(format!("• {line}"));
    }
    let width = ui.available_width().min(900.0);
    for f in &view.figures {
        ui.separator();
        let size = f.texture.size_vec2();
        ui.add(
            egui::Image::new(&f.texture)
                .fit_to_exact_size(egui::vec2(width, width * size.y / size.x)),
        );
        ui.label(&f.caption);
    }
}
