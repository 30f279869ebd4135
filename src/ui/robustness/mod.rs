//! The Robustness tab: noise curves per condition (mean and SEM bands) that
//! fill in as levels finish, minimal adversarial perturbations with a gallery
//! of examples appearing while the attack runs, and a table of median
//! distances per run. Runs are the ones ticked in the run list; results
//! are stored in the run folders and shown again when a run is reopened.

mod attack;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use eframe::egui::{self, Color32, TextureHandle};
use egui_plot::{Legend, Line, Plot, PlotPoints, Polygon};
use serde::{Deserialize, Serialize};

use super::shared::{push_new, Shared};
use super::view::{Cx, View};
use super::widgets::comparisons::comparisons_grid;
use crate::eval::attacks::Norm;
use crate::eval::comparisons::Comparison;
use crate::eval::minimal::{budget_curve, AttackConfig, AttackName, AttackResult};
use crate::eval::noise::{
    noise_comparisons, summarise, ConditionCurve, NoiseConfig, NoiseCurve, NoiseKind,
};
use crate::eval::results::RunResults;
use crate::pipeline::attack::{attack, AttackEvent, AttackRequest, Example};
use crate::pipeline::noise::{evaluate_noise, NoiseEvent, NoiseRequest};
use crate::runs::store::RunInfo;
use attack::attack_panel;

/// Adversarial examples kept for the gallery.
const GALLERY: usize = 12;

/// Job keys.
const NOISE: &str = "robustness.noise";
pub(super) const ATTACK: &str = "robustness.attack";

/// What the Robustness tab remembers between starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The noise.
    pub kind: NoiseKind,
    /// Levels, test images and seed of the noise evaluation.
    pub noise: NoiseConfig,
    /// The attack settings.
    pub attack: AttackConfig,
    /// Step budgets of a Fig. 5 curve, comma-separated.
    pub budgets: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kind: NoiseKind::Gaussian,
            noise: NoiseConfig::default(),
            attack: AttackConfig {
                attack: AttackName::Pgd,
                norm: Norm::Linf,
                samples: 50,
                batch: 25,
                rounds: 8,
                steps: 0,
                seed: 0,
            },
            budgets: "5,10,20,40".into(),
        }
    }
}

/// View state of the Robustness tab.
#[derive(Default)]
pub struct RobustnessView {
    /// The settings.
    pub settings: Settings,
    live: Arc<Mutex<Vec<NoiseCurve>>>,
    /// Examples found by the running (or last) attack.
    pub gallery: Arc<Mutex<Vec<Example>>>,
    pub(super) textures: Vec<[TextureHandle; 3]>,
    /// The ticked runs, copied from the run list when it is re-read, the ticks change or an
    /// evaluation ends, not in every frame.
    runs: Vec<RunInfo>,
    /// Their stored results, read at the same moments.
    results: BTreeMap<PathBuf, RunResults>,
    /// The run-list refresh `results` was read at (None: never).
    results_at: Option<f64>,
    /// The declared comparisons of the curves shown, with the key of those curves: computed
    /// when the curves change, not in every frame (the power search takes hundreds of ms).
    comparisons: Option<(u64, Arc<Vec<Comparison>>)>,
}

impl View for RobustnessView {
    fn poll(&mut self, shared: &mut Shared) {
        let mut ended = false;
        for key in [NOISE, ATTACK] {
            if let Some(result) = shared.jobs.take::<()>(key) {
                shared.report(result);
                ended = true;
            }
        }
        let at = shared.runs.refreshed_at();
        let ticked = shared.runs.ticked_runs();
        let retick = !self
            .runs
            .iter()
            .map(|r| &r.dir)
            .eq(ticked.iter().map(|r| &r.dir));
        if ended || retick || self.results_at != Some(at) {
            self.runs = ticked.into_iter().cloned().collect();
            self.results = self
                .runs
                .iter()
                .map(|r| (r.dir.clone(), RunResults::read(&r.dir)))
                .collect();
            for e in self.results.values().flat_map(|r| &r.unreadable) {
                push_new(&mut shared.errors, e.clone());
            }
            self.results_at = Some(at);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        // The panels borrow the view mutably; the runs step out of it meanwhile.
        let runs = std::mem::take(&mut self.runs);
        self.panels(ui, shared, &runs);
        self.runs = runs;
    }
}

impl RobustnessView {
    /// The noise and attack panels of the ticked `runs`.
    fn panels(&mut self, ui: &mut egui::Ui, shared: &mut Shared, runs: &[RunInfo]) {
        if runs.is_empty() {
            ui.label("Tick trained runs in the Training tab to evaluate them here.");
            return;
        }
        ui.horizontal(|ui| {
            let plural = if runs.len() == 1 { "" } else { "s" };
            ui.label(format!(
                "{} run{plural} ticked in the Training tab.",
                runs.len()
            ));
        });
        ui.separator();
        let cx = &mut Cx { view: self, shared };
        egui::ScrollArea::vertical()
            .id_salt("robustness")
            .show(ui, |ui| {
                noise_panel(cx, ui, runs);
                ui.separator();
                attack_panel(cx, ui, runs);
            });
    }

    /// The stored attack results of `run` as last read.
    pub(super) fn attacks_of(&self, run: &RunInfo) -> Vec<AttackResult> {
        self.results_of(run)
            .map(|x| x.attacks.clone())
            .unwrap_or_default()
    }

    /// The stored results of `run` as last read.
    pub(super) fn results_of(&self, run: &RunInfo) -> Option<&RunResults> {
        self.results.get(&run.dir)
    }
}

fn start_noise(cx: &mut Cx<RobustnessView>, runs: Vec<PathBuf>) {
    let set = &cx.view.settings;
    let request = NoiseRequest {
        runs,
        kind: set.kind,
        noise: set.noise.clone(),
    };
    let (device, live) = (cx.shared.device.clone(), cx.view.live.clone());
    if let Ok(mut l) = live.lock() {
        l.clear();
    }
    cx.shared.jobs.spawn(NOISE, "noise evaluation", move |p| {
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
}

/// Attacks `run`, its first examples joining the gallery as they are found.
pub(super) fn start_attack(cx: &mut Cx<RobustnessView>, run: PathBuf) {
    let request = AttackRequest {
        run,
        config: cx.view.settings.attack.clone(),
        examples: GALLERY,
    };
    let device = cx.shared.device.clone();
    let gallery = cx.view.gallery.clone();
    if let Ok(mut g) = gallery.lock() {
        g.clear();
    }
    cx.view.textures.clear();
    cx.shared.jobs.spawn(ATTACK, "attack", move |p| {
        attack(&request, &device, p, &mut |event| {
            if let (AttackEvent::Example(e), Ok(mut g)) = (event, gallery.lock()) {
                g.push(e);
            }
        })
        .map(|_| ())
    });
}

/// Starts the median-against-budget curve (Fig. 5) of the chosen attack on `run`.
pub(super) fn start_budgets(cx: &mut Cx<RobustnessView>, run: PathBuf, budgets: Vec<usize>) {
    let config = cx.view.settings.attack.clone();
    let device = cx.shared.device.clone();
    cx.shared.jobs.spawn(ATTACK, "budget curve", move |p| {
        budget_curve(&run, &config, &budgets, &device, p).map(|_| ())
    });
}

/// Positive integers from a comma-separated list (None if any entry is not one).
pub(super) fn parse_budgets(text: &str) -> Option<Vec<usize>> {
    let v: Option<Vec<usize>> = text
        .split(',')
        .map(|s| s.trim().parse().ok().filter(|&n: &usize| n > 0))
        .collect();
    v.filter(|v| !v.is_empty())
}

/// The noise curves: stored per condition with SEM bands, running ones dashed.
fn noise_panel(cx: &mut Cx<RobustnessView>, ui: &mut egui::Ui, runs: &[RunInfo]) {
    ui.heading("Noise robustness (Fig. 4)");
    let busy = cx.shared.jobs.is_running(NOISE);
    ui.horizontal(|ui| {
        let set = &mut cx.view.settings;
        egui::ComboBox::from_id_salt("noise_kind")
            .selected_text(set.kind.name())
            .show_ui(ui, |ui| {
                for k in [
                    NoiseKind::Gaussian,
                    NoiseKind::Uniform,
                    NoiseKind::SaltAndPepper,
                ] {
                    ui.selectable_value(&mut set.kind, k, k.name());
                }
            });
        ui.label("test images");
        ui.add(egui::DragValue::new(&mut set.noise.samples).range(10..=10000));
        let label = ui.label("noise seed");
        ui.add(egui::DragValue::new(&mut set.noise.seed))
            .labelled_by(label.id);
    });
    if !busy && ui.button("Evaluate noise").clicked() {
        let dirs = runs.iter().map(|r| r.dir.clone()).collect();
        start_noise(cx, dirs);
    }
    let view = &*cx.view;
    // Finished curves (stored) and the ones filling in now.
    let live: Vec<NoiseCurve> = view.live.lock().map(|l| l.clone()).unwrap_or_default();
    let stored: Vec<NoiseCurve> = runs
        .iter()
        .filter_map(|r| view.results_of(r)?.curve(view.settings.kind).cloned())
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
            .x_axis_label(format!("{} noise level", view.settings.kind.name()))
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
        super::export::figure_png(cx.shared, ui.ctx(), "noise_curves", area.response.rect);
    }
    let key = curves_key(&stored);
    if cx.view.comparisons.as_ref().map(|c| c.0) != Some(key) {
        cx.view.comparisons = Some((key, Arc::new(noise_comparisons(&stored, &summary))));
    }
    let comparisons = cx.view.comparisons.as_ref().map(|c| c.1.clone());
    noise_statistics(
        ui,
        &summary,
        comparisons.as_deref().map_or(&[], Vec::as_slice),
    );
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
        super::export::csv(cx.shared, "noise_curves", &text);
    }
}

/// What the comparisons of `curves` depend on, hashed.
fn curves_key(curves: &[NoiseCurve]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in curves {
        (&c.run, c.seed, c.strength.to_bits(), c.kind.name()).hash(&mut h);
        for v in c.levels.iter().chain(&c.accuracy) {
            v.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// The pre-declared summary per condition (each run's mean accuracy over the levels) and the
/// declared comparisons over paired seeds, with their intervals and corrected p.
fn noise_statistics(ui: &mut egui::Ui, summary: &[ConditionCurve], comparisons: &[Comparison]) {
    if summary.is_empty() {
        return;
    }
    ui.strong("Mean accuracy over the noise levels (mean ± SEM over seeds)");
    egui::Grid::new("noise_summary")
        .striped(true)
        .show(ui, |ui| {
            for c in summary {
                ui.label(c.label());
                ui.monospace(format!(
                    "{:.3} ± {:.3}",
                    c.mean_over_levels.mean, c.mean_over_levels.sem
                ));
                ui.end_row();
            }
        });
    if comparisons.is_empty() {
        return;
    }
    ui.strong("Paired by seed: 95% t interval, exact sign-flip p, Holm within each measure");
    comparisons_grid(ui, "noise_comparisons", comparisons);
}

/// A colour per condition curve.
pub(super) fn condition_colour(k: usize) -> Color32 {
    egui::ecolor::Hsva::new((k as f32 * 0.381_966).fract(), 0.7, 0.9, 1.0).into()
}
