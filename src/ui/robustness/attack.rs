//! The Robustness tab's attack panel: settings, the gallery of examples filling in while an
//! attack runs, the median-against-budget curves (Fig. 5) and the medians per run.

use eframe::egui::{self, Color32, ColorImage, TextureOptions};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::{condition_colour, parse_budgets, start_attack, start_budgets, RobustnessView, ATTACK};
use crate::eval::attacks::Norm;
use crate::eval::minimal::{AttackName, BudgetCurve};
use crate::eval::results::robustness_score;
use crate::runs::store::RunInfo;
use crate::ui::view::Cx;

/// The attack settings and buttons, the gallery, the budget curves and the medians.
pub fn attack_panel(cx: &mut Cx<RobustnessView>, ui: &mut egui::Ui, runs: &[RunInfo]) {
    ui.heading("Minimal adversarial perturbations (Fig. 5)");
    let busy = cx.shared.jobs.is_running(ATTACK);
    ui.horizontal(|ui| {
        let a = &mut cx.view.settings.attack;
        egui::ComboBox::from_id_salt("attack")
            .selected_text(a.attack.label())
            .show_ui(ui, |ui| {
                for name in AttackName::ALL {
                    ui.selectable_value(&mut a.attack, name, name.label());
                }
            });
        let norms = a.attack.norms();
        if !norms.contains(&a.norm) {
            a.norm = norms[0];
        }
        egui::ComboBox::from_id_salt("norm")
            .selected_text(format!("{:?}", a.norm))
            .show_ui(ui, |ui| {
                for &n in norms {
                    ui.selectable_value(&mut a.norm, n, format!("{n:?}"));
                }
            });
        ui.label("samples");
        ui.add(egui::DragValue::new(&mut a.samples).range(1..=10000));
        ui.label(if a.attack == AttackName::Cw {
            "constant searches"
        } else {
            "search rounds"
        });
        ui.add_enabled(
            a.attack.searches_epsilon() || a.attack == AttackName::Cw,
            egui::DragValue::new(&mut a.rounds).range(1..=30),
        );
        ui.label("steps (0: default)");
        ui.add(egui::DragValue::new(&mut a.steps).range(0..=10000));
    });
    if !busy {
        ui.horizontal(|ui| {
            if ui.button(format!("Attack {}", runs[0].name())).clicked() {
                start_attack(cx, runs[0].dir.clone());
            }
            let set = &mut cx.view.settings;
            let iterative = set.attack.attack != AttackName::Fgsm;
            let budgets = parse_budgets(&set.budgets);
            ui.label("budgets");
            ui.add(egui::TextEdit::singleline(&mut set.budgets).desired_width(90.0));
            let start = ui
                .add_enabled(
                    iterative && budgets.is_some(),
                    egui::Button::new("Budget curve (Fig. 5)"),
                )
                .on_disabled_hover_text("an iterative attack and step counts such as 5,10,20");
            if let (true, Some(b)) = (start.clicked(), budgets) {
                start_budgets(cx, runs[0].dir.clone(), b);
            }
        });
    } else if let Some(job) = cx.shared.jobs.status(ATTACK) {
        ui.horizontal(|ui| {
            let (stage, fraction) = job.progress();
            ui.label(stage);
            ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
            if ui.button("Cancel attack").clicked() {
                job.cancel();
            }
        });
    }
    gallery(cx, ui);
    budget_plot(ui, &*cx.view, runs);
    ui.horizontal(|ui| {
        ui.label(
            "Median minimal distance per run (best over the attacks run; - : none or infinite)",
        );
        if ui.button("Export medians CSV").clicked() {
            export_medians(cx, runs);
        }
    });
    egui::Grid::new("medians").striped(true).show(ui, |ui| {
        for h in ["run", "condition", "L0", "L1", "L2", "Linf", "attacks"] {
            ui.strong(h);
        }
        ui.end_row();
        for r in runs {
            let results = cx.view.attacks_of(r);
            let cell = |n| robustness_score(&results, n).map_or("-".into(), |v| format!("{v:.4}"));
            ui.label(r.name());
            ui.label(r.config.condition.label());
            for n in [Norm::L0, Norm::L1, Norm::L2, Norm::Linf] {
                ui.label(cell(n));
            }
            ui.label(
                results
                    .iter()
                    .map(|x| format!("{} {:?}", x.config.attack.label(), x.config.norm))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            ui.end_row();
        }
    });
}

/// Writes every stored attack's median and each norm's score (best over the attacks) per run.
fn export_medians(cx: &mut Cx<RobustnessView>, runs: &[RunInfo]) {
    let mut text = String::from("run,condition,strength,seed,norm,attack,samples,median\n");
    let cell = |m: Option<f32>| m.map_or("inf".into(), |m| m.to_string());
    for r in runs {
        let results = cx.view.attacks_of(r);
        let head = format!(
            "{},{},{},{}",
            r.name(),
            r.config.condition.label(),
            r.config.strength,
            r.config.seed
        );
        for x in &results {
            text.push_str(&format!(
                "{head},{:?},{},{},{}\n",
                x.config.norm,
                x.config.attack.label(),
                x.distances.len(),
                cell(x.median)
            ));
        }
        for n in [Norm::L0, Norm::L1, Norm::L2, Norm::Linf] {
            if results.iter().any(|x| x.config.norm == n) {
                let shared = results
                    .iter()
                    .filter(|x| x.config.norm == n)
                    .map(|x| x.distances.len())
                    .min()
                    .unwrap_or(0);
                text.push_str(&format!(
                    "{head},{n:?},best,{shared},{}\n",
                    cell(robustness_score(&results, n))
                ));
            }
        }
    }
    crate::ui::export::csv(cx.shared, "attack_medians", &text);
}

/// Median distance against the step budget for the runs that have one (`neureg attack --budgets`).
fn budget_plot(ui: &mut egui::Ui, view: &RobustnessView, runs: &[RunInfo]) {
    let curves: Vec<(String, BudgetCurve)> = runs
        .iter()
        .flat_map(|r| {
            view.results_of(r)
                .map(|x| x.budgets.clone())
                .unwrap_or_default()
                .into_iter()
                .map(move |c| (r.name(), c))
        })
        .collect();
    if curves.is_empty() {
        return;
    }
    ui.label("Median distance against the iteration budget (Fig. 5)");
    Plot::new("budgets")
        .height(180.0)
        .include_y(0.0)
        .legend(Legend::default())
        .x_axis_label("steps")
        .y_axis_label("median distance")
        .show(ui, |p| {
            for (k, (name, c)) in curves.iter().enumerate() {
                let pts: PlotPoints = c
                    .budgets
                    .iter()
                    .zip(&c.medians)
                    .filter_map(|(b, m)| m.map(|m| [*b as f64, m as f64]))
                    .collect();
                let label = format!("{name}: {} {:?}", c.config.attack.label(), c.config.norm);
                p.line(Line::new(label, pts).color(condition_colour(k)));
            }
        });
}

fn gallery(cx: &mut Cx<RobustnessView>, ui: &mut egui::Ui) {
    let view = &mut *cx.view;
    let Ok(examples) = view.gallery.lock() else {
        return;
    };
    if examples.is_empty() {
        return;
    }
    // Textures for examples that arrived since the last frame.
    while view.textures.len() < examples.len() {
        let e = &examples[view.textures.len()];
        let delta: Vec<f32> = e
            .adversarial
            .iter()
            .zip(&e.original)
            .map(|(a, o)| a - o)
            .collect();
        let vmax = delta.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let [h, w] = [e.shape.0, e.shape.1];
        let gray = |p: &[f32]| {
            ColorImage::new(
                [w, h],
                p.iter()
                    .map(|v| Color32::from_gray((v.clamp(0.0, 1.0) * 255.0) as u8))
                    .collect(),
            )
        };
        let diverging = ColorImage::new(
            [w, h],
            delta
                .iter()
                .map(|&d| crate::ui::widgets::colour_map::diverging(d, vmax))
                .collect(),
        );
        let k = view.textures.len();
        let load = |name: &str, img: ColorImage| {
            ui.ctx()
                .load_texture(format!("adv{k}{name}"), img, TextureOptions::NEAREST)
        };
        view.textures.push([
            load("o", gray(&e.original)),
            load("d", diverging),
            load("a", gray(&e.adversarial)),
        ]);
    }
    ui.label(
        "Adversarial examples: original, perturbation (amplified; red up, blue down), adversarial",
    );
    // Rows of as many examples as fit: each three images wide, the caption wrapping under them.
    let cell = 3.0 * 64.0 + 2.0 * ui.spacing().item_spacing.x;
    let per_row = ((ui.available_width() / (cell + 12.0)) as usize).max(1);
    let shown = ui.vertical(|ui| {
        for row in examples.chunks(per_row).zip(view.textures.chunks(per_row)) {
            ui.horizontal_top(|ui| {
                for (e, t) in row.0.iter().zip(row.1) {
                    ui.vertical(|ui| {
                        ui.set_width(cell);
                        ui.horizontal(|ui| {
                            for tex in t {
                                ui.image((tex.id(), egui::vec2(64.0, 64.0)));
                            }
                        });
                        ui.add(
                            egui::Label::new(format!(
                                "{} seen as {}, distance {:.4}",
                                e.classes.0, e.classes.1, e.distance
                            ))
                            .wrap(),
                        );
                    });
                    ui.add_space(12.0);
                }
            });
        }
    });
    drop(examples);
    if ui.button("Save gallery PNG").clicked() {
        crate::ui::export::figure_png(
            cx.shared,
            ui.ctx(),
            "adversarial_examples",
            shown.response.rect,
        );
    }
}
