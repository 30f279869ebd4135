//! The Training tab: queue regularised training runs (condition, target,
//! strength, seeds), watch their losses and accuracies live, the layer weights
//! gamma as a stacked area, and a final table per condition (the paper's
//! Table 1). Runs are read from their folders (the shared run list), so runs started from the
//! command line show up the same way.

mod plots;

use std::path::PathBuf;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::shared::Shared;
use super::view::{Cx, View};
use super::widgets::path_field::path_field;
use crate::nn::models::resnet::Depth;
use crate::nn::optim::schedule::Schedule;
use crate::runs::config::{Condition, Optimizer, RunConfig};
use crate::runs::store::{run_dir, RunInfo};
use crate::runs::Workspace;
use crate::samples::sample_path;
use crate::train::classifier::train_run;
use plots::{condition_table, curves, run_list};

/// The job key of the run training now.
const RUN: &str = "training.run";

/// What the Training tab remembers between starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The settings of the next runs.
    pub form: RunConfig,
    /// Seeds of the next runs, comma-separated.
    pub seeds: String,
    /// Strengths of the next runs, comma-separated (empty: the form's).
    pub strengths: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            form: RunConfig::default(),
            seeds: "0".into(),
            strengths: String::new(),
        }
    }
}

/// View state of the Training tab.
pub struct TrainingView {
    /// The settings.
    pub settings: Settings,
    queue: Vec<RunConfig>,
    /// The folder of the run training now.
    running: Option<PathBuf>,
}

impl TrainingView {
    /// The demo's form on the sample data.
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
            settings: Settings {
                form,
                ..Settings::default()
            },
            queue: Vec::new(),
            running: None,
        }
    }

    /// Whether a run is training or queued.
    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }
}

impl View for TrainingView {
    /// Collects a finished run and starts the next queued one.
    fn poll(&mut self, shared: &mut Shared) {
        if let Some(result) = shared.jobs.take::<RunInfo>(RUN) {
            shared.report(result);
            self.running = None;
            shared.runs.refresh_soon();
        }
        if self.running.is_none() && !self.queue.is_empty() {
            let config = self.queue.remove(0);
            let dir = run_dir(std::path::Path::new(&shared.runs.root), &config);
            shared.runs.ticked.insert(dir.clone());
            let device = shared.device.clone();
            let d = dir.clone();
            shared.jobs.spawn(
                RUN,
                &format!("training {}", config.folder_name()),
                move |p| train_run(&d, &config, &device, p),
            );
            self.running = Some(dir);
            shared.runs.refresh_soon();
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let cx = &mut Cx { view: self, shared };
        egui::Panel::left("training_settings")
            .resizable(true)
            .default_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| settings(cx, ui));
            });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                run_list(&mut cx.shared.runs, ui);
                ui.separator();
                curves(&cx.shared.runs, ui);
                ui.separator();
                condition_table(&cx.shared.runs, ui);
            });
        });
    }
}

/// A grid's header row.
pub(super) fn header(ui: &mut egui::Ui, titles: &[&str]) {
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

fn settings(cx: &mut Cx<TrainingView>, ui: &mut egui::Ui) {
    let view = &mut *cx.view;
    let set = &mut view.settings;
    let f = &mut set.form;
    ui.heading("New runs");
    path_field(ui, "Data set", &mut f.data, None);
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
    if f.condition.needs_target() {
        let mut target = f.target.clone().unwrap_or_default();
        path_field(
            ui,
            "Target",
            &mut target,
            Some(("target (.npy) or VGG weights", &["npy", "safetensors"])),
        );
        f.target = (!target.as_os_str().is_empty()).then_some(target);
    }
    if f.condition.has_similarity_loss() {
        path_field(ui, "Target images", &mut f.images, None);
        ui.horizontal(|ui| drag(ui, "Strength a", &mut f.strength, 0.0..=1000.0, 0.5));
        ui.horizontal(|ui| {
            ui.label("Strength sweep");
            ui.add(
                egui::TextEdit::singleline(&mut set.strengths)
                    .hint_text("e.g. 1, 10, 20")
                    .desired_width(120.0),
            );
        });
        ui.horizontal(|ui| {
            ui.label("Similarity batch (0: as the batch)");
            ui.add(egui::DragValue::new(&mut f.similarity_batch).range(0..=512));
        });
        if f.condition == Condition::Feature {
            ui.horizontal(|ui| {
                ui.label("Feature tap (a run folder as target)");
                ui.add(egui::DragValue::new(&mut f.feature_tap).range(1..=33));
                ui.label("VGG layer (a .safetensors target)");
                ui.add(egui::TextEdit::singleline(&mut f.feature_layer).desired_width(90.0));
            });
        }
        if f.condition == Condition::PixelThresholded {
            ui.horizontal(|ui| {
                drag(
                    ui,
                    "Threshold TH",
                    &mut f.pixel_threshold,
                    0.01..=0.99,
                    0.01,
                )
            });
        }
    }
    if f.condition == Condition::Blur {
        ui.horizontal(|ui| {
            drag(
                ui,
                "Blur sigma (pixels)",
                &mut f.blur_sigma,
                0.1..=16.0,
                0.1,
            )
        });
    }
    ui.horizontal(|ui| {
        ui.label("Seeds");
        ui.add(egui::TextEdit::singleline(&mut set.seeds).desired_width(80.0));
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
    ui.horizontal(|ui| {
        ui.label("Precise batch norm: batches (0: off)")
            .on_hover_text(
                "Before every checkpoint the running statistics are recomputed over this many \
                 training batches (Wu and Johnson 2021)",
            );
        ui.add(egui::DragValue::new(&mut f.precise_bn_batches).range(0..=1000));
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
        ui.add(egui::TextEdit::singleline(&mut cx.shared.runs.root).desired_width(200.0));
    });
    let seeds = parse_list::<u64>(&set.seeds);
    let strengths = parse_list::<f64>(&set.strengths);
    let sweep = match (seeds, strengths) {
        (Some(s), Some(a)) => Ok(set.form.sweep(&s, &a)),
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
                    Err(e) => cx.shared.errors.push(e.to_string()),
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
    if let (Some(dir), Some(job)) = (&view.running, cx.shared.jobs.status(RUN)) {
        ui.horizontal(|ui| {
            let (stage, fraction) = job.progress();
            ui.label(format!("{}: {stage}", dir.display()));
            ui.add(egui::ProgressBar::new(fraction).desired_width(80.0));
            if ui.button("Stop").clicked() {
                job.cancel();
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
pub(super) fn parse_list<T: std::str::FromStr>(text: &str) -> Option<Vec<T>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}
