//! The Training tab's drawings of the run list: the runs with their tick boxes, the ticked
//! runs' curves (losses, accuracies, stacked layer weights) and Table 1.

use eframe::egui::{self, Color32};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::header;
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;
use crate::ui::shared::RunList;

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

/// The runs of the list, each with a tick box.
pub fn run_list(list: &mut RunList, ui: &mut egui::Ui) {
    ui.heading(format!("Runs in {}", list.root));
    if list.runs.is_empty() {
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
        for run in &list.runs {
            let mut on = list.ticked.contains(&run.dir);
            if ui.checkbox(&mut on, "").changed() {
                if on {
                    list.ticked.insert(run.dir.clone());
                } else {
                    list.ticked.remove(&run.dir);
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
                run.last_epoch()
                    .map(|(_, _, test)| format!("{test:.3}"))
                    .unwrap_or_default(),
            );
            ui.end_row();
        }
    });
}

/// Losses, accuracies and layer weights of the ticked runs.
pub fn curves(list: &RunList, ui: &mut egui::Ui) {
    let shown = list.ticked_runs();
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
                        let pts: PlotPoints = run.steps().iter().map(|s| [s.0, s.1]).collect();
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
                            let pts: PlotPoints = run.steps().iter().map(|s| [s.0, s.2]).collect();
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
                        let epochs = run.epochs();
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
            let series = run.steps();
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

/// The paper's Table 1: per condition, the finished runs' test accuracy and final layer weights.
pub fn condition_table(list: &RunList, ui: &mut egui::Ui) {
    ui.heading("Per condition (finished runs)");
    if list.table.is_empty() {
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
        for row in &list.table {
            let (m, s) = (row.accuracy.mean, row.accuracy.sem);
            ui.label(row.condition.label());
            ui.label(row.runs.to_string());
            ui.label(if row.accuracy.n > 1 {
                format!("{m:.3} ± {s:.3}")
            } else {
                format!("{m:.3} (one seed)")
            });
            ui.label(match &row.gamma {
                Some(g) => g
                    .iter()
                    .map(|v| format!("{v:.2}"))
                    .collect::<Vec<_>>()
                    .join("  "),
                None => "-".into(),
            });
            ui.end_row();
        }
    });
}
