//! The Training tab: queue regularised training runs (condition, target,
//! strength, seeds), watch their losses and accuracies live, the layer weights
//! gamma as a stacked area, and a final table per condition (the paper's
//! Table 1). Runs are read from their folders, so runs started from the
//! command line show up the same way.

use std::collections::BTreeSet;
use std::path::PathBuf;

use eframe::egui::{self, Color32};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::NeuregApp;
use crate::jobs::Job;
use crate::nn::resnet::Depth;
use crate::nn::schedule::Schedule;
use crate::runs::config::{Condition, Optimizer, RunConfig};
use crate::runs::store::{list_runs, run_dir, RunInfo, RunStatus};
use crate::runs::{MetricEvent, Workspace};
use crate::samples::sample_path;
use crate::train::classifier::train_run;

/// Seconds between re-reads of the run folders.
const REFRESH_SECONDS: f64 = 1.0;

/// View state of the Training tab.
pub struct TrainingView {
    /// The settings of the next runs.
    pub form: RunConfig,
    /// Seeds of the next runs, comma-separated.
    pub seeds: String,
    /// Strengths of the next runs, comma-separated (empty: the form's).
    pub strengths: String,
    /// Folder holding the runs.
    pub root: String,
    queue: Vec<RunConfig>,
    job: Option<(PathBuf, Job<RunInfo>)>,
    /// The runs found in the folder, with their metrics.
    pub runs: Vec<RunInfo>,
    /// Runs whose curves are overlaid.
    pub selected: BTreeSet<PathBuf>,
    last_refresh: f64,
}

impl TrainingView {
    /// The demo's form on the sample data, listing the runs of `workspace`.
    pub fn new(workspace: &Workspace) -> Self {
        let sample = |p: &str| sample_path(p, Some(&workspace.root));
        let model_target = sample("targets/neural_model.npy");
        let has_target = model_target.is_file();
        let form = RunConfig {
            data: sample("fashion-mnist"),
            images: sample("scans/scan_1.zip"),
            condition: if has_target {
                Condition::NeuralModel
            } else {
                Condition::None
            },
            target: has_target.then_some(model_target),
            ..RunConfig::default()
        };
        TrainingView {
            form,
            seeds: "0".into(),
            strengths: String::new(),
            root: default_root(workspace),
            queue: Vec::new(),
            job: None,
            runs: Vec::new(),
            selected: BTreeSet::new(),
            last_refresh: f64::NEG_INFINITY,
        }
    }
}

/// The workspace's runs, or, while it has none, the runs of the shipped lecture experiment (so
/// that a newcomer sees the comparison without training anything).
fn default_root(workspace: &Workspace) -> String {
    let shipped = sample_path("experiments/lecture/runs", Some(&workspace.root));
    let own = workspace.runs();
    if !own.is_dir() && shipped.is_dir() {
        shipped.display().to_string()
    } else {
        own.display().to_string()
    }
}

impl TrainingView {
    /// Whether a run is training or queued.
    pub fn is_busy(&self) -> bool {
        self.job.is_some() || !self.queue.is_empty()
    }

    /// Re-reads the run folders.
    fn refresh(&mut self, errors: &mut Vec<String>) {
        match list_runs(std::path::Path::new(&self.root)) {
            Ok(found) => {
                self.runs = found
                    .into_iter()
                    .filter_map(|r| r.map_err(|e| errors.push(e.to_string())).ok())
                    .collect();
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
}

impl TrainingView {
    /// When the run folders were last re-read (egui's clock): views that read more of each
    /// run refresh with it.
    pub fn refreshed_at(&self) -> f64 {
        self.last_refresh
    }
}

/// Starts the next queued run, collects a finished one and re-reads the run folders.
pub fn poll(app: &mut NeuregApp, now: f64) {
    let repaint = app.repaint_fn();
    let view = &mut app.training_view;
    let mut refresh = now - view.last_refresh >= REFRESH_SECONDS;
    if let Some((_, job)) = view.job.as_mut() {
        if let Some(result) = job.poll() {
            match result {
                Ok(_) | Err(crate::Error::Cancelled) => {}
                Err(e) => app.errors.push(e.to_string()),
            }
            view.job = None;
            refresh = true;
        }
    }
    if view.job.is_none() && !view.queue.is_empty() {
        let config = view.queue.remove(0);
        let dir = run_dir(std::path::Path::new(&view.root), &config);
        view.selected.insert(dir.clone());
        let device = app.device.clone();
        let d = dir.clone();
        let job = Job::spawn(
            &format!("training {}", config.folder_name()),
            repaint,
            move |p| train_run(&d, &config, &device, p),
        );
        app.jobs.push(job.status());
        view.job = Some((dir, job));
        refresh = true;
    }
    if refresh {
        view.refresh(&mut app.errors);
        view.last_refresh = now;
        if view.selected.is_empty() {
            // Nothing chosen yet: show every run found.
            view.selected = view.runs.iter().map(|r| r.dir.clone()).collect();
        }
    }
}

/// Draws the tab.
pub fn show(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let now = ui.input(|i| i.time);
    if app.training_view.is_busy() {
        // Keep re-reading the metrics while a run writes them.
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs_f64(REFRESH_SECONDS));
    }
    poll(app, now);
    egui::Panel::left("training_settings")
        .resizable(true)
        .default_size(330.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| settings(app, ui));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            run_list(app, ui);
            ui.separator();
            curves(&app.training_view, ui);
            ui.separator();
            condition_table(&app.training_view, ui);
        });
    });
}

/// A grid's header row.
fn header(ui: &mut egui::Ui, titles: &[&str]) {
    for t in titles {
        ui.strong(*t);
    }
    ui.end_row();
}

/// A labelled number field.
fn drag(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut f64,
    range: std::ops::RangeInclusive<f64>,
    speed: f64,
) {
    ui.label(label);
    ui.add(egui::DragValue::new(value).range(range).speed(speed));
}

fn path_field(ui: &mut egui::Ui, label: &str, path: &mut PathBuf) {
    ui.horizontal(|ui| {
        ui.label(label);
        let mut text = path.display().to_string();
        if ui
            .add(egui::TextEdit::singleline(&mut text).desired_width(220.0))
            .changed()
        {
            *path = PathBuf::from(text);
        }
    });
}

fn settings(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let view = &mut app.training_view;
    let f = &mut view.form;
    ui.heading("New runs");
    path_field(ui, "Data set", &mut f.data);
    ui.horizontal(|ui| {
        ui.label("Images (train / test, 0 = all)");
        ui.add(egui::DragValue::new(&mut f.train_limit).speed(100));
        ui.add(egui::DragValue::new(&mut f.test_limit).speed(100));
    });
    ui.horizontal(|ui| {
        ui.label("Network");
        egui::ComboBox::from_id_salt("depth")
            .selected_text(depth_label(f.depth))
            .show_ui(ui, |ui| {
                for d in [Depth::Resnet18, Depth::Resnet34] {
                    ui.selectable_value(&mut f.depth, d, depth_label(d));
                }
            });
        drag(ui, "width", &mut f.width, 0.03..=2.0, 0.01);
    });
    ui.horizontal(|ui| {
        ui.label("Condition");
        egui::ComboBox::from_id_salt("condition")
            .selected_text(f.condition.label())
            .show_ui(ui, |ui| {
                for c in Condition::ALL {
                    ui.selectable_value(&mut f.condition, c, c.label());
                }
            });
    });
    if f.condition != Condition::None {
        let mut target = f.target.clone().unwrap_or_default();
        path_field(ui, "Target", &mut target);
        f.target = (!target.as_os_str().is_empty()).then_some(target);
        path_field(ui, "Target images", &mut f.images);
        ui.horizontal(|ui| drag(ui, "Strength a", &mut f.strength, 0.0..=1000.0, 0.5));
        ui.horizontal(|ui| {
            ui.label("Strength sweep");
            ui.add(
                egui::TextEdit::singleline(&mut view.strengths)
                    .hint_text("e.g. 1, 10, 20")
                    .desired_width(120.0),
            );
        });
        if f.condition == Condition::Feature {
            ui.horizontal(|ui| {
                ui.label("Feature tap");
                ui.add(egui::DragValue::new(&mut f.feature_tap).range(1..=33));
            });
        }
    }
    ui.horizontal(|ui| {
        ui.label("Seeds");
        ui.add(egui::TextEdit::singleline(&mut view.seeds).desired_width(80.0));
        ui.label("Epochs");
        ui.add(egui::DragValue::new(&mut f.epochs).range(1..=200));
    });
    ui.horizontal(|ui| {
        ui.label("Batch");
        ui.add(egui::DragValue::new(&mut f.batch).range(2..=512));
        drag(ui, "lr", &mut f.lr, 1e-5..=1.0, 0.001);
    });
    ui.horizontal(|ui| {
        ui.label("Schedule");
        egui::ComboBox::from_id_salt("schedule")
            .selected_text(format!("{:?}", f.schedule))
            .show_ui(ui, |ui| {
                for s in [Schedule::Paper, Schedule::Cosine, Schedule::Constant] {
                    ui.selectable_value(&mut f.schedule, s, format!("{s:?}"));
                }
            });
        egui::ComboBox::from_id_salt("optimizer")
            .selected_text(format!("{:?}", f.optimizer))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut f.optimizer, Optimizer::Sgd, "SGD");
                ui.selectable_value(&mut f.optimizer, Optimizer::Adamw, "AdamW");
            });
    });
    if ui
        .button("Paper scale")
        .on_hover_text("Width 1, 40 epochs, every image")
        .clicked()
    {
        *f = f.clone().paper_scale();
    }
    ui.horizontal(|ui| {
        ui.label("Runs folder");
        ui.add(egui::TextEdit::singleline(&mut view.root).desired_width(200.0));
    });
    let seeds = parse_list::<u64>(&view.seeds);
    let strengths = parse_list::<f64>(&view.strengths);
    let sweep = match (seeds, strengths) {
        (Some(s), Some(a)) => Ok(view.form.sweep(&s, &a)),
        _ => Err(()),
    };
    match sweep {
        Ok(configs) => {
            let label = format!(
                "Queue {} run{}",
                configs.len(),
                if configs.len() == 1 { "" } else { "s" }
            );
            if ui.button(label).clicked() {
                match configs.iter().try_for_each(RunConfig::validate) {
                    Ok(()) => view.queue.extend(configs),
                    Err(e) => app.errors.push(e.to_string()),
                }
            }
        }
        Err(_) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                "seeds: comma-separated integers",
            );
        }
    }
    if !view.queue.is_empty() {
        ui.label(format!("{} queued", view.queue.len()));
    }
    if let Some((dir, job)) = &view.job {
        ui.horizontal(|ui| {
            let (stage, fraction) = job.status().progress();
            ui.label(format!("{}: {stage}", dir.display()));
            ui.add(egui::ProgressBar::new(fraction).desired_width(80.0));
            if ui.button("Stop").clicked() {
                job.status().cancel();
            }
        });
    }
}

/// The network's name as the paper writes it.
fn depth_label(depth: Depth) -> &'static str {
    match depth {
        Depth::Resnet18 => "ResNet18",
        Depth::Resnet34 => "ResNet34",
    }
}

/// A comma-separated list of numbers, or `None` if one does not parse.
fn parse_list<T: std::str::FromStr>(text: &str) -> Option<Vec<T>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

fn status_text(run: &RunInfo) -> String {
    let epochs = run
        .events
        .iter()
        .filter(|e| matches!(e, MetricEvent::Epoch { .. }))
        .count();
    match run.status() {
        RunStatus::Finished => format!("finished, {epochs} epochs"),
        RunStatus::Stopped(r) => format!("stopped: {r}"),
        RunStatus::Incomplete => format!("{epochs} of {} epochs", run.config.epochs),
    }
}

fn run_list(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let view = &mut app.training_view;
    ui.heading(format!("Runs in {}", view.root));
    if view.runs.is_empty() {
        ui.label("No runs yet: queue one on the left, or run `neureg train`.");
        return;
    }
    egui::Grid::new("runs").striped(true).show(ui, |ui| {
        header(
            ui,
            &[
                "",
                "run",
                "condition",
                "a",
                "seed",
                "status",
                "test accuracy",
            ],
        );
        for run in &view.runs {
            let mut on = view.selected.contains(&run.dir);
            if ui.checkbox(&mut on, "").changed() {
                if on {
                    view.selected.insert(run.dir.clone());
                } else {
                    view.selected.remove(&run.dir);
                }
            }
            let name = ui.label(run.name());
            if let Some(notice) = run.config.notice() {
                name.on_hover_text(&notice);
            }
            ui.label(run.config.condition.label());
            ui.label(format!("{}", run.config.strength));
            ui.label(format!("{}", run.config.seed));
            match run.config.notice() {
                Some(notice) => {
                    ui.colored_label(ui.visuals().warn_fg_color, "predates the batch-norm fix")
                        .on_hover_text(notice);
                }
                None => {
                    ui.label(status_text(run));
                }
            }
            ui.label(
                last_epoch(run)
                    .map(|(_, _, test)| format!("{test:.3}"))
                    .unwrap_or_default(),
            );
            ui.end_row();
        }
    });
}

/// The last epoch's (epoch, train accuracy, test accuracy).
fn last_epoch(run: &RunInfo) -> Option<(usize, f64, f64)> {
    run.events.iter().rev().find_map(|e| match e {
        MetricEvent::Epoch {
            epoch,
            train_accuracy,
            test_accuracy,
            ..
        } => Some((*epoch, *train_accuracy, *test_accuracy)),
        _ => None,
    })
}

/// Per-step series of a run: (step, task loss, similarity loss, gamma).
fn step_series(run: &RunInfo) -> Vec<(f64, f64, f64, Vec<f64>)> {
    run.events
        .iter()
        .filter_map(|e| match e {
            MetricEvent::Step {
                step,
                task_loss,
                sim_loss,
                gamma,
                ..
            } => Some((*step as f64, *task_loss, *sim_loss, gamma.clone())),
            _ => None,
        })
        .collect()
}

fn curves(view: &TrainingView, ui: &mut egui::Ui) {
    let shown: Vec<&RunInfo> = view
        .runs
        .iter()
        .filter(|r| view.selected.contains(&r.dir))
        .collect();
    if shown.is_empty() {
        ui.label("Tick runs above to see their curves.");
        return;
    }
    let width = (ui.available_width() / 2.0 - 10.0).max(200.0);
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Task loss (cross-entropy) per step");
            Plot::new("task_loss")
                .width(width)
                .height(200.0)
                .legend(Legend::default())
                .show(ui, |p| {
                    for (k, run) in shown.iter().enumerate() {
                        let pts: PlotPoints = step_series(run).iter().map(|s| [s.0, s.1]).collect();
                        p.line(Line::new(run.name(), pts).color(run_colour(k)));
                    }
                });
        });
        ui.vertical(|ui| {
            ui.label("Similarity loss (Eq. 8) per step");
            Plot::new("sim_loss")
                .width(width)
                .height(200.0)
                .legend(Legend::default())
                .show(ui, |p| {
                    for (k, run) in shown.iter().enumerate() {
                        if run.config.regularised() {
                            let pts: PlotPoints =
                                step_series(run).iter().map(|s| [s.0, s.2]).collect();
                            p.line(Line::new(run.name(), pts).color(run_colour(k)));
                        }
                    }
                });
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Accuracy per epoch (solid: test, dashed: train)");
            Plot::new("accuracy")
                .width(width)
                .height(200.0)
                .legend(Legend::default())
                .include_y(0.0)
                .include_y(1.0)
                .show(ui, |p| {
                    for (k, run) in shown.iter().enumerate() {
                        let epochs: Vec<(f64, f64, f64)> = run
                            .events
                            .iter()
                            .filter_map(|e| match e {
                                MetricEvent::Epoch {
                                    epoch,
                                    train_accuracy,
                                    test_accuracy,
                                    ..
                                } => Some((*epoch as f64 + 1.0, *train_accuracy, *test_accuracy)),
                                _ => None,
                            })
                            .collect();
                        let test: PlotPoints = epochs.iter().map(|e| [e.0, e.2]).collect();
                        let train: PlotPoints = epochs.iter().map(|e| [e.0, e.1]).collect();
                        p.line(
                            Line::new(format!("{} test", run.name()), test).color(run_colour(k)),
                        );
                        p.line(
                            Line::new(format!("{} train", run.name()), train)
                                .color(run_colour(k))
                                .style(egui_plot::LineStyle::dashed_loose()),
                        );
                    }
                });
        });
        ui.vertical(|ui| {
            let run = shown[0];
            ui.label(format!(
                "Layer weights gamma (Eq. 10) of {}, stacked",
                run.name()
            ));
            let series = step_series(run);
            let taps = run.config.network(2).taps;
            Plot::new("gamma")
                .width(width)
                .height(200.0)
                .legend(Legend::default())
                .include_y(0.0)
                .include_y(1.0)
                .show(ui, |p| {
                    // Stacked area: the cumulative sums drawn from the top layer down, each filled to 0.
                    for l in (0..taps.len()).rev() {
                        let pts: PlotPoints = series
                            .iter()
                            .map(|s| [s.0, s.3.iter().take(l + 1).sum::<f64>()])
                            .collect();
                        let colour = layer_colour(l, taps.len());
                        p.line(
                            Line::new(format!("{}. conv {}", l + 1, taps[l]), pts)
                                .color(colour)
                                .fill(0.0)
                                .fill_alpha(1.0),
                        );
                    }
                });
        });
    });
}

/// One colour per run shown (the same in every plot).
fn run_colour(k: usize) -> Color32 {
    // Golden-angle hues stay distinct for any number of runs.
    egui::ecolor::Hsva::new((k as f32 * 0.381_966).fract(), 0.7, 0.9, 1.0).into()
}

/// A distinct colour per layer (hues around the circle).
fn layer_colour(l: usize, n: usize) -> Color32 {
    egui::ecolor::Hsva::new(l as f32 / n.max(1) as f32, 0.65, 0.85, 1.0).into()
}

/// Mean and standard error of the mean.
fn mean_sem(v: &[f64]) -> (f64, f64) {
    let m = crate::stats::MeanSem::of(v);
    (m.mean, m.sem)
}

/// The paper's Table 1: per condition, the finished runs' test accuracy and final layer weights.
fn condition_table(view: &TrainingView, ui: &mut egui::Ui) {
    ui.heading("Per condition (finished runs)");
    let finished: Vec<&RunInfo> = view
        .runs
        .iter()
        .filter(|r| r.status() == RunStatus::Finished)
        .collect();
    if finished.is_empty() {
        ui.label("No finished runs yet.");
        return;
    }
    egui::Grid::new("conditions").striped(true).show(ui, |ui| {
        header(
            ui,
            &[
                "condition",
                "runs",
                "test accuracy (mean ± SEM)",
                "final gamma per tap",
            ],
        );
        for c in Condition::ALL {
            let runs: Vec<&&RunInfo> = finished
                .iter()
                .filter(|r| r.config.condition == c)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let acc: Vec<f64> = runs
                .iter()
                .filter_map(|r| last_epoch(r).map(|e| e.2))
                .collect();
            let (m, s) = mean_sem(&acc);
            let gammas: Vec<Vec<f64>> = runs
                .iter()
                .filter_map(|r| step_series(r).last().map(|s| s.3.clone()))
                .collect();
            let gamma_text = match gammas.first() {
                Some(g0) if c != Condition::None => (0..g0.len())
                    .map(|l| {
                        let v: Vec<f64> = gammas.iter().filter_map(|g| g.get(l).copied()).collect();
                        format!("{:.2}", mean_sem(&v).0)
                    })
                    .collect::<Vec<_>>()
                    .join("  "),
                _ => "-".into(),
            };
            ui.label(c.label());
            ui.label(runs.len().to_string());
            ui.label(if acc.len() > 1 {
                format!("{m:.3} ± {s:.3}")
            } else {
                format!("{m:.3} (one seed)")
            });
            ui.label(gamma_text);
            ui.end_row();
        }
    });
}
