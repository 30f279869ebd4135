//! The Robustness tab: noise curves per condition (mean and SEM bands) that
//! fill in as levels finish, minimal adversarial perturbations with a gallery
//! of examples appearing while the attack runs, and a table of median
//! distances per run. Runs are the ones ticked in the Training tab; results
//! are stored in the run folders and shown again when a run is reopened.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Legend, Line, Plot, PlotPoints, Polygon};

use super::NeuregApp;
use crate::data::classification::load_classification_set;
use crate::eval::attacks::Norm;
use crate::eval::minimal::{
    attack_run, budget_curve, AttackConfig, AttackName, AttackResult, BudgetCurve,
};
use crate::eval::noise::{summarise, NoiseCurve, NoiseKind};
use crate::eval::results::{robustness_score, RunResults};
use crate::jobs::Job;
use crate::pipeline::noise::{evaluate_noise, NoiseEvent, NoiseRequest};
use crate::runs::store::RunInfo;
use crate::runs::RunConfig;

/// Adversarial examples kept for the gallery.
const GALLERY: usize = 12;

/// One adversarial example of the gallery.
pub struct Example {
    /// Height and width.
    pub shape: (usize, usize),
    /// Original pixels on [0, 1].
    pub original: Vec<f32>,
    /// Adversarial pixels on [0, 1].
    pub adversarial: Vec<f32>,
    /// True class and the class the model gives the adversarial, by name.
    pub classes: (String, String),
    /// Measured distance.
    pub distance: f32,
}

/// View state of the Robustness tab.
pub struct RobustnessView {
    kind: NoiseKind,
    /// Test images of the noise evaluation.
    pub noise_samples: usize,
    /// Seed of the noise (`neureg eval-noise --seed`).
    pub noise_seed: u64,
    /// The attack settings.
    pub attack: AttackConfig,
    noise_job: Option<Job<()>>,
    live: Arc<Mutex<Vec<NoiseCurve>>>,
    /// Step budgets of a Fig. 5 curve, comma-separated.
    pub budgets: String,
    attack_job: Option<Job<()>>,
    /// Examples found by the running (or last) attack.
    pub gallery: Arc<Mutex<Vec<Example>>>,
    textures: Vec<[TextureHandle; 3]>,
    /// The stored results of the ticked runs, re-read with the Training tab's run list (once a
    /// second) and when an evaluation ends, never in a frame.
    results: BTreeMap<PathBuf, RunResults>,
    /// The run-list refresh `results` was read at.
    results_at: f64,
}

impl Default for RobustnessView {
    fn default() -> Self {
        RobustnessView {
            kind: NoiseKind::Gaussian,
            noise_samples: 500,
            noise_seed: 0,
            attack: AttackConfig {
                attack: AttackName::Pgd,
                norm: Norm::Linf,
                samples: 50,
                batch: 25,
                rounds: 8,
                steps: 0,
                seed: 0,
            },
            noise_job: None,
            live: Arc::default(),
            budgets: "5,10,20,40".into(),
            attack_job: None,
            gallery: Arc::default(),
            textures: Vec::new(),
            results: BTreeMap::new(),
            results_at: f64::NAN,
        }
    }
}

impl RobustnessView {
    /// Whether an evaluation is running.
    pub fn is_busy(&self) -> bool {
        self.noise_job.is_some() || self.attack_job.is_some()
    }
}

/// The runs ticked in the Training tab.
fn chosen_runs(app: &NeuregApp) -> Vec<RunInfo> {
    let t = &app.training_view;
    t.runs
        .iter()
        .filter(|r| t.selected.contains(&r.dir))
        .cloned()
        .collect()
}

/// Drops `job` once it has finished; its error, unless a cancel, joins `errors`. Results are
/// read back from the run folders.
fn collect<T: Send + 'static>(job: &mut Option<Job<T>>, errors: &mut Vec<String>) {
    if let Some(result) = job.as_mut().and_then(|j| j.poll()) {
        if let Err(e) = result {
            if !matches!(e, crate::Error::Cancelled) {
                errors.push(e.to_string());
            }
        }
        *job = None;
    }
}

fn poll(app: &mut NeuregApp) {
    let view = &mut app.robustness_view;
    let busy = view.is_busy();
    collect(&mut view.noise_job, &mut app.errors);
    collect(&mut view.attack_job, &mut app.errors);
    let ended = busy && !app.robustness_view.is_busy();
    let at = app.training_view.refreshed_at();
    // (NaN at first: never equal.)
    if ended || at != app.robustness_view.results_at {
        let results: BTreeMap<PathBuf, RunResults> = chosen_runs(app)
            .into_iter()
            .map(|r| {
                let results = RunResults::read(&r.dir);
                (r.dir, results)
            })
            .collect();
        for e in results.values().flat_map(|r| &r.unreadable) {
            if !app.errors.contains(e) {
                app.errors.push(e.clone());
            }
        }
        let view = &mut app.robustness_view;
        (view.results, view.results_at) = (results, at);
    }
}

/// The stored attack results of `run` as last read.
fn attacks_of(view: &RobustnessView, run: &RunInfo) -> Vec<AttackResult> {
    results_of(view, run)
        .map(|x| x.attacks.clone())
        .unwrap_or_default()
}

/// The stored results of `run` as last read.
fn results_of<'a>(view: &'a RobustnessView, run: &RunInfo) -> Option<&'a RunResults> {
    view.results.get(&run.dir)
}

fn start_noise(app: &mut NeuregApp, runs: Vec<PathBuf>) {
    let view = &mut app.robustness_view;
    let request = NoiseRequest {
        runs,
        kind: view.kind,
        levels: Vec::new(),
        samples: view.noise_samples,
        noise_seed: view.noise_seed,
    };
    let (device, live) = (app.device.clone(), view.live.clone());
    if let Ok(mut l) = live.lock() {
        l.clear();
    }
    let job = Job::spawn("noise evaluation", app.repaint_fn(), move |p| {
        evaluate_noise(&request, &device, p, &mut |event| {
            let Ok(mut l) = live.lock() else { return };
            match event {
                NoiseEvent::RunStarted { curve, .. } => l.push(curve.clone()),
                NoiseEvent::Level {
                    level, accuracy, ..
                } => {
                    if let Some(c) = l.last_mut() {
                        c.levels.push(level);
                        c.accuracy.push(accuracy);
                    }
                }
                NoiseEvent::RunDone { .. } => {}
            }
        })
        .map(|_| ())
    });
    app.jobs.push(job.status());
    app.robustness_view.noise_job = Some(job);
}

fn start_attack(app: &mut NeuregApp, run: PathBuf) {
    let view = &mut app.robustness_view;
    let config = view.attack.clone();
    let device = app.device.clone();
    let gallery = view.gallery.clone();
    if let Ok(mut g) = gallery.lock() {
        g.clear();
    }
    view.textures.clear();
    let job = Job::spawn("attack", app.repaint_fn(), move |p| {
        let names = class_names(&run);
        let name = |k: u32| names.get(k as usize).cloned().unwrap_or(k.to_string());
        attack_run(&run, &config, &device, p, &mut |batch| {
            let (x, labels, found) = (batch.images, batch.labels, batch.found);
            let Ok(mut g) = gallery.lock() else { return };
            let (h, w) = (x.dim(2).unwrap_or(0), x.dim(3).unwrap_or(0));
            for (i, &d) in found.distance.iter().enumerate() {
                if g.len() >= GALLERY || !d.is_finite() || d == 0.0 {
                    continue;
                }
                let image = |t: &candle_core::Tensor| {
                    t.get(i)
                        .and_then(|v| v.flatten_all())
                        .and_then(|v| v.to_vec1::<f32>())
                };
                if let (Ok(original), Ok(adversarial)) = (image(x), image(&found.adversarial)) {
                    g.push(Example {
                        shape: (h, w),
                        original,
                        adversarial,
                        classes: (name(labels[i]), name(found.predicted[i])),
                        distance: d,
                    });
                }
            }
        })
        .map(|_| ())
    });
    app.jobs.push(job.status());
    app.robustness_view.attack_job = Some(job);
}

/// The class names of a run's data set (empty if it cannot be read).
fn class_names(run: &std::path::Path) -> Vec<String> {
    RunConfig::load(run)
        .ok()
        .and_then(|c| load_classification_set(&c.data).ok())
        .map(|set| set.classes)
        .unwrap_or_default()
}

/// Starts the median-against-budget curve (Fig. 5) of the chosen attack on `run`.
fn start_budgets(app: &mut NeuregApp, run: PathBuf, budgets: Vec<usize>) {
    let config = app.robustness_view.attack.clone();
    let device = app.device.clone();
    let job = Job::spawn("budget curve", app.repaint_fn(), move |p| {
        budget_curve(&run, &config, &budgets, &device, p).map(|_| ())
    });
    app.jobs.push(job.status());
    app.robustness_view.attack_job = Some(job);
}

/// Positive integers from a comma-separated list (None if any entry is not one).
fn parse_budgets(text: &str) -> Option<Vec<usize>> {
    let v: Option<Vec<usize>> = text
        .split(',')
        .map(|s| s.trim().parse().ok().filter(|&n: &usize| n > 0))
        .collect();
    v.filter(|v| !v.is_empty())
}

/// Draws the tab.
pub fn show(app: &mut NeuregApp, ui: &mut egui::Ui) {
    // The runs come from the Training tab's list, kept fresh from the run folders.
    super::training_tab::poll(app, ui.input(|i| i.time));
    poll(app);
    let runs = chosen_runs(app);
    if runs.is_empty() {
        ui.label("Tick trained runs in the Training tab to evaluate them here.");
        return;
    }
    ui.horizontal(|ui| {
        ui.label(format!("{} runs ticked in the Training tab.", runs.len()));
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("robustness")
        .show(ui, |ui| {
            noise_panel(app, ui, &runs);
            ui.separator();
            attack_panel(app, ui, &runs);
        });
}

fn noise_panel(app: &mut NeuregApp, ui: &mut egui::Ui, runs: &[RunInfo]) {
    ui.heading("Noise robustness (Fig. 4)");
    let busy = app.robustness_view.noise_job.is_some();
    ui.horizontal(|ui| {
        let view = &mut app.robustness_view;
        egui::ComboBox::from_id_salt("noise_kind")
            .selected_text(view.kind.name())
            .show_ui(ui, |ui| {
                for k in [
                    NoiseKind::Gaussian,
                    NoiseKind::Uniform,
                    NoiseKind::SaltAndPepper,
                ] {
                    ui.selectable_value(&mut view.kind, k, k.name());
                }
            });
        ui.label("test images");
        ui.add(egui::DragValue::new(&mut view.noise_samples).range(10..=10000));
        let label = ui.label("noise seed");
        ui.add(egui::DragValue::new(&mut view.noise_seed))
            .labelled_by(label.id);
    });
    if !busy && ui.button("Evaluate noise").clicked() {
        let dirs = runs.iter().map(|r| r.dir.clone()).collect();
        start_noise(app, dirs);
    }
    let view = &app.robustness_view;
    // Finished curves (stored) and the ones filling in now.
    let live: Vec<NoiseCurve> = view.live.lock().map(|l| l.clone()).unwrap_or_default();
    let stored: Vec<NoiseCurve> = runs
        .iter()
        .filter_map(|r| results_of(view, r)?.curve(view.kind).cloned())
        .filter(|c| {
            !live
                .iter()
                .any(|l| l.run == c.run && l.accuracy.len() < c.levels.len())
        })
        .collect();
    let summary = summarise(&stored).unwrap_or_default();
    // The plot with its axes, the area a saved PNG shows.
    let area = ui.vertical(|ui| {
        Plot::new("noise_curves")
            .height(260.0)
            .legend(Legend::default())
            .include_y(0.0)
            .include_y(1.0)
            .x_axis_label(format!("{} noise level", view.kind.name()))
            .y_axis_label("test accuracy")
            .show(ui, |p| {
                for (k, c) in summary.iter().enumerate() {
                    let colour = condition_colour(k);
                    let name = c.label();
                    let mut band: Vec<[f64; 2]> = c
                        .levels
                        .iter()
                        .zip(c.mean.iter().zip(&c.sem))
                        .map(|(l, (m, s))| [*l, m + s])
                        .collect();
                    band.extend(
                        c.levels
                            .iter()
                            .zip(c.mean.iter().zip(&c.sem))
                            .rev()
                            .map(|(l, (m, s))| [*l, m - s]),
                    );
                    p.polygon(
                        Polygon::new(name.clone(), PlotPoints::from(band))
                            .fill_color(colour.gamma_multiply(0.25))
                            // No outline, but the colour: the legend shows an item's stroke
                            // colour, and the band shares its entry with the curve.
                            .stroke(egui::Stroke::new(0.0, colour)),
                    );
                    let pts: PlotPoints = c
                        .levels
                        .iter()
                        .zip(&c.mean)
                        .map(|(l, m)| [*l, *m])
                        .collect();
                    p.line(Line::new(name, pts).color(colour));
                }
                for c in live.iter().filter(|c| c.accuracy.len() < 11) {
                    let pts: PlotPoints = c
                        .levels
                        .iter()
                        .zip(&c.accuracy)
                        .map(|(l, a)| [*l, *a])
                        .collect();
                    p.line(
                        Line::new(format!("{} (running)", c.run), pts)
                            .style(egui_plot::LineStyle::dashed_loose()),
                    );
                }
            });
    });
    if ui.button("Save noise plot PNG").clicked() {
        super::export::figure_png(app, ui.ctx(), "noise_curves", area.response.rect);
    }
    if !stored.is_empty() && ui.button("Export noise CSV").clicked() {
        let mut text = String::from("run,condition,strength,seed,level,accuracy\n");
        for c in &stored {
            for (l, a) in c.levels.iter().zip(&c.accuracy) {
                text.push_str(&format!(
                    "{},{},{},{},{l},{a}\n",
                    c.run,
                    c.condition.label(),
                    c.strength,
                    c.seed
                ));
            }
        }
        super::export::csv(app, "noise_curves", &text);
    }
}

/// A colour per condition curve.
fn condition_colour(k: usize) -> Color32 {
    egui::ecolor::Hsva::new((k as f32 * 0.381_966).fract(), 0.7, 0.9, 1.0).into()
}

fn attack_panel(app: &mut NeuregApp, ui: &mut egui::Ui, runs: &[RunInfo]) {
    ui.heading("Minimal adversarial perturbations (Fig. 5)");
    let busy = app.robustness_view.attack_job.is_some();
    ui.horizontal(|ui| {
        let a = &mut app.robustness_view.attack;
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
                start_attack(app, runs[0].dir.clone());
            }
            let view = &mut app.robustness_view;
            let iterative = view.attack.attack != AttackName::Fgsm;
            let budgets = parse_budgets(&view.budgets);
            ui.label("budgets");
            ui.add(egui::TextEdit::singleline(&mut view.budgets).desired_width(90.0));
            let start = ui
                .add_enabled(
                    iterative && budgets.is_some(),
                    egui::Button::new("Budget curve (Fig. 5)"),
                )
                .on_disabled_hover_text("an iterative attack and step counts such as 5,10,20");
            if let (true, Some(b)) = (start.clicked(), budgets) {
                start_budgets(app, runs[0].dir.clone(), b);
            }
        });
    } else if let Some(job) = &app.robustness_view.attack_job {
        ui.horizontal(|ui| {
            let (stage, fraction) = job.status().progress();
            ui.label(stage);
            ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
            if ui.button("Cancel attack").clicked() {
                job.status().cancel();
            }
        });
    }
    gallery(app, ui);
    budget_plot(ui, &app.robustness_view, runs);
    ui.horizontal(|ui| {
        ui.label(
            "Median minimal distance per run (best over the attacks run; - : none or infinite)",
        );
        if ui.button("Export medians CSV").clicked() {
            export_medians(app, runs);
        }
    });
    egui::Grid::new("medians").striped(true).show(ui, |ui| {
        for h in ["run", "condition", "L0", "L1", "L2", "Linf", "attacks"] {
            ui.strong(h);
        }
        ui.end_row();
        for r in runs {
            let results = attacks_of(&app.robustness_view, r);
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
fn export_medians(app: &mut NeuregApp, runs: &[RunInfo]) {
    let mut text = String::from("run,condition,strength,seed,norm,attack,samples,median\n");
    let cell = |m: Option<f32>| m.map_or("inf".into(), |m| m.to_string());
    for r in runs {
        let results = attacks_of(&app.robustness_view, r);
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
    super::export::csv(app, "attack_medians", &text);
}

/// Median distance against the step budget for the runs that have one (`neureg attack --budgets`).
fn budget_plot(ui: &mut egui::Ui, view: &RobustnessView, runs: &[RunInfo]) {
    let curves: Vec<(String, BudgetCurve)> = runs
        .iter()
        .flat_map(|r| {
            results_of(view, r)
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

fn gallery(app: &mut NeuregApp, ui: &mut egui::Ui) {
    let view = &mut app.robustness_view;
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
                .map(|&d| super::widgets::colour_map::diverging(d, vmax))
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
        super::export::figure_png(app, ui.ctx(), "adversarial_examples", shown.response.rect);
    }
}
