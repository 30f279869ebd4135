//! The Experiment tab: open a plan, a preset or an experiment folder, start and pause it, see
//! its units' states and the report's opening lines and figures fill in as units finish. Unit
//! states and the report are re-read once a second, never in every frame.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::shared::{Shared, REFRESH_SECONDS};
use super::view::{Cx, View};
use super::widgets::comparisons::comparisons_grid;
use crate::experiment::check::check_plan;
use crate::experiment::report::{read_report, write_report, Report};
use crate::experiment::status::{statuses, UnitState, UnitStatus};
use crate::experiment::unit::run_all;
use crate::experiment::{Experiment, Plan, Preset};
use crate::runs::Workspace;
use crate::samples::sample_path;

/// A report figure shown in the tab.
struct Figure {
    caption: String,
    texture: egui::TextureHandle,
}

/// The job key of the experiment running.
const RUN: &str = "experiment.run";

/// What the Experiment tab remembers between starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// A plan file (.toml, .json) or an experiment folder, as typed.
    pub source: String,
    /// Where a plan file's experiment goes.
    pub folder: String,
}

/// The tab's state.
pub struct ExperimentView {
    /// The settings.
    pub settings: Settings,
    /// The experiment open.
    pub experiment: Option<Experiment>,
    /// Its units' states, as last read.
    pub units: Vec<UnitStatus>,
    /// The report, as last read.
    pub report: Option<Report>,
    /// What the plan check found when the experiment was opened.
    pub problems: Vec<String>,
    figures: Vec<Figure>,
    report_stamp: Option<SystemTime>,
    last_refresh: f64,
}

impl ExperimentView {
    /// Opens the shipped lecture experiment when there is one; new experiments go into the
    /// workspace.
    pub fn new(workspace: &Workspace) -> Self {
        let shipped = sample_path("experiments/lecture", Some(&workspace.root));
        ExperimentView {
            settings: Settings {
                source: shipped.display().to_string(),
                folder: lecture_folder(workspace),
            },
            experiment: Experiment::open(&shipped).ok(),
            units: Vec::new(),
            report: None,
            problems: Vec::new(),
            figures: Vec::new(),
            report_stamp: None,
            last_refresh: f64::NEG_INFINITY,
        }
    }
}

/// Where the lecture preset's experiment goes in `workspace`.
fn lecture_folder(workspace: &Workspace) -> String {
    workspace
        .experiments()
        .join("lecture")
        .display()
        .to_string()
}

impl ExperimentView {
    /// Opens what `source` names: an experiment folder, or a plan whose experiment goes to
    /// `folder`.
    fn open(&mut self) -> crate::Result<()> {
        let source = PathBuf::from(self.settings.source.trim());
        let exp = if Experiment::plan_path(&source).is_file() {
            Experiment::open(&source)?
        } else {
            Experiment::create(
                Path::new(self.settings.folder.trim()),
                &Plan::read(&source)?,
            )?
        };
        self.set(exp);
        Ok(())
    }

    fn set(&mut self, exp: Experiment) {
        self.problems = check_plan(&exp.plan, &exp.dir);
        self.experiment = Some(exp);
        self.report_stamp = None;
        self.figures.clear();
        self.report = None;
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
        self.report = read_report(&report).ok();
        let files = self.report.iter().flat_map(|r| r.figures.iter());
        self.figures = files
            .filter_map(|(file, caption)| {
                let path = report.join(file);
                let img = image::open(&path).ok()?.to_rgba8();
                let size = [img.width() as usize, img.height() as usize];
                let colour = egui::ColorImage::from_rgba_unmultiplied(size, img.as_raw());
                let texture = ctx.load_texture(
                    path.display().to_string(),
                    colour,
                    egui::TextureOptions::LINEAR,
                );
                Some(Figure {
                    caption: caption.clone(),
                    texture,
                })
            })
            .collect();
    }
}

/// Draws the tab, re-reading the folder once a second.
fn show(cx: &mut Cx<ExperimentView>, ui: &mut egui::Ui) {
    let now = ui.input(|i| i.time);
    if now - cx.view.last_refresh >= REFRESH_SECONDS {
        cx.view.refresh(ui.ctx());
        cx.view.last_refresh = now;
    }
    egui::Panel::left("experiment_controls")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| controls(cx, ui));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| report(&*cx.view, ui));
    });
}

fn controls(cx: &mut Cx<ExperimentView>, ui: &mut egui::Ui) {
    let device = cx.shared.device.clone();
    let job = cx.shared.jobs.status(RUN);
    let view = &mut *cx.view;
    ui.heading("Experiment");
    ui.label("Plan (.toml, .json) or experiment folder");
    ui.text_edit_singleline(&mut view.settings.source);
    ui.label("Experiment folder for a plan");
    ui.text_edit_singleline(&mut view.settings.folder);
    let idle = job.is_none();
    ui.horizontal(|ui| {
        if ui.add_enabled(idle, egui::Button::new("Open")).clicked() {
            if let Err(e) = view.open() {
                cx.shared.errors.push(e.to_string());
            }
        }
        if ui
            .add_enabled(idle, egui::Button::new("Lecture preset"))
            .on_hover_text(
                "None, Neural (model), Neural (data), Shuffle, Pixel (thresholded) and Blur on \
                 the samples",
            )
            .clicked()
        {
            let plan = Plan::preset(
                Preset::Lecture,
                &sample_path("", Some(&cx.shared.workspace.root)),
            );
            match Experiment::create(Path::new(view.settings.folder.trim()), &plan) {
                Ok(exp) => view.set(exp),
                Err(e) => cx.shared.errors.push(e.to_string()),
            }
        }
    });
    let Some(exp) = view.experiment.clone() else {
        ui.label("Open a plan or an experiment folder, or start from the lecture preset.");
        return;
    };
    ui.separator();
    ui.label(format!("{} in {}", exp.plan.name, exp.dir.display()));
    if !view.problems.is_empty() {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("The plan cannot run ({} problems):", view.problems.len()),
        );
        for p in &view.problems {
            ui.colored_label(ui.visuals().error_fg_color, format!("• {p}"));
        }
    }
    ui.horizontal(|ui| {
        if ui.add_enabled(idle, egui::Button::new("Start")).clicked() {
            let e = exp.clone();
            cx.shared
                .jobs
                .spawn(RUN, &format!("experiment {}", exp.plan.name), move |p| {
                    run_all(&e, &device, p, &mut |_, _| {}).map(|_| ())
                });
        }
        if let Some(job) = &job {
            if ui
                .button("Pause")
                .on_hover_text("Checkpoint the running unit and stop; Start resumes it")
                .clicked()
            {
                job.pause();
            }
            let (stage, fraction) = job.progress();
            ui.add(egui::ProgressBar::new(fraction).text(stage));
        } else if ui.button("Rebuild report").clicked() {
            if let Err(e) = write_report(&exp) {
                cx.shared.errors.push(e.to_string());
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
    let Some(r) = view.report.as_ref().filter(|r| !r.summary.is_empty()) else {
        ui.label("No report yet: it is written as units finish.");
        return;
    };
    ui.heading("What the numbers show");
    for line in &r.summary {
        ui.label(format!("• {line}"));
    }
    if !r.comparisons.is_empty() {
        ui.separator();
        ui.strong(
            "Declared comparisons (paired by seed; exact sign-flip p, Holm within each measure)",
        );
        comparisons_grid(ui, "experiment_comparisons", &r.comparisons);
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

impl View for ExperimentView {
    /// Collects a finished (or paused) run.
    fn poll(&mut self, shared: &mut Shared) {
        match shared.jobs.take::<()>(RUN) {
            Some(Err(crate::Error::Paused(why))) => shared.notices.push(format!("paused: {why}")),
            Some(result) => {
                shared.report(result);
            }
            None => return,
        }
        self.last_refresh = f64::NEG_INFINITY;
    }

    fn workspace_changed(&mut self, shared: &Shared) {
        self.settings.folder = lecture_folder(&shared.workspace);
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        show(&mut Cx { view: self, shared }, ui)
    }
}
