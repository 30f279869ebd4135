//! The experiment's report, readable without neureg: `report/report.md` with PNG figures, and
//! every number as CSV and `numbers.json`. Its opening lines are written from the numbers and
//! their errors; a partial experiment reports what it has and lists what is missing.
//!
//! Statistics: over seeds, mean and standard error of the mean (SEM); differences between
//! conditions are paired by seed (the same seed gives the same initial weights, batch order and
//! augmentation) and called a difference only beyond two standard errors of the paired
//! differences. Minimal perturbations: per run the median over samples of the smallest distance
//! any of the plan's attacks found in that norm; per condition the mean of those medians over
//! seeds, with a 95% bootstrap interval over samples (the same resampled samples for every
//! seed).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::eval::attacks::Norm;
use crate::eval::minimal::{median, AttackResult};
use crate::eval::noise::{NoiseCurve, NoiseKind};
use crate::eval::results::best_distances;
use crate::experiment::figures::{palette, render, Chart, Mark, Series};
use crate::experiment::unit::{plan_attacks, plan_curve, state_of, UnitState, UnitStatus};
use crate::experiment::Experiment;
use crate::runs::config::Condition;
use crate::runs::lock::FolderLock;
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;
use crate::stats::{bootstrap_interval, paired_differences, MeanSem};

/// Bootstrap resamples of the perturbation intervals.
const RESAMPLES: usize = 1000;

/// One unit's line.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    /// Its run folder's name.
    pub name: String,
    /// Its group's label.
    pub group: String,
    /// Its seed.
    pub seed: u64,
    /// Its state in words.
    pub status: String,
    /// Final test accuracy, when trained.
    pub test_accuracy: Option<f64>,
    /// Final layer weights gamma, when trained with the similarity loss.
    pub gamma: Option<Vec<f64>>,
}

/// A (condition, strength): its seeds' clean accuracy and final gamma.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    /// "Neural (model)", or with ", a = 10" when the plan has several strengths for it.
    pub label: String,
    /// The condition.
    pub condition: Condition,
    /// The strength a.
    pub strength: f64,
    /// Seeds whose training finished.
    pub seeds: Vec<u64>,
    /// Final test accuracy over those seeds.
    pub clean: Option<MeanSem>,
    /// Clean accuracy minus None's, paired by seed.
    pub clean_vs_none: Option<MeanSem>,
    /// The tapped conv layers.
    pub taps: Vec<usize>,
    /// Final gamma per tap over seeds (Table 1); empty without the similarity loss.
    pub gamma: Vec<MeanSem>,
}

/// One group's noise curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurveRow {
    /// The group.
    pub label: String,
    /// Accuracy per level over seeds.
    pub accuracy: Vec<MeanSem>,
}

/// A group's accuracy minus a reference group's at each level, paired by seed.
#[derive(Debug, Clone, Serialize)]
pub struct DifferenceRow {
    /// The group.
    pub label: String,
    /// The reference ("None", "Shuffle").
    pub against: String,
    /// Paired difference per level.
    pub difference: Vec<MeanSem>,
}

/// Fig. 4 for one kind of noise.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseSection {
    /// The noise.
    pub kind: NoiseKind,
    /// Its levels.
    pub levels: Vec<f64>,
    /// Per group.
    pub curves: Vec<CurveRow>,
    /// Against None and against Shuffle.
    pub differences: Vec<DifferenceRow>,
}

/// A group's minimal perturbation in one norm.
#[derive(Debug, Clone, Serialize)]
pub struct PerturbationRow {
    /// The group.
    pub label: String,
    /// The norm.
    pub norm: Norm,
    /// The attacks whose best is taken.
    pub attacks: Vec<String>,
    /// Per seed with results: (seed, median over samples; None: infinite).
    pub per_seed: Vec<(u64, Option<f64>)>,
    /// Mean over seeds of the medians (None: some median infinite, or no results).
    pub median: Option<f64>,
    /// 95% bootstrap interval over samples of that mean.
    pub interval: Option<(f64, f64)>,
    /// Samples per run.
    pub samples: usize,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plan's name.
    pub name: String,
    /// Units done out of all.
    pub done: usize,
    /// Every unit.
    pub units: Vec<UnitRow>,
    /// Clean accuracy and Table 1.
    pub groups: Vec<GroupRow>,
    /// Fig. 4 per noise kind.
    pub noise: Vec<NoiseSection>,
    /// Minimal perturbations per group and norm.
    pub perturbations: Vec<PerturbationRow>,
    /// The opening lines.
    pub summary: Vec<String>,
}

/// What a finished unit contributes.
struct UnitData {
    group: usize,
    seed: u64,
    test_accuracy: f64,
    gamma: Option<Vec<f64>>,
    curves: Vec<NoiseCurve>,
    attacks: Vec<AttackResult>,
}

/// The final test accuracy and gamma of a finished run.
fn final_numbers(run: &RunInfo) -> Option<(f64, Option<Vec<f64>>)> {
    let accuracy = run.events.iter().rev().find_map(|e| match e {
        MetricEvent::Finished { test_accuracy, .. } => Some(*test_accuracy),
        _ => None,
    })?;
    let gamma = run.config.regularised().then(|| {
        run.events.iter().rev().find_map(|e| match e {
            MetricEvent::Step { gamma, .. } => Some(gamma.clone()),
            _ => None,
        })
    });
    Some((accuracy, gamma.flatten()))
}

/// Reads every unit's results and computes the report (writes nothing).
pub fn build_report(exp: &Experiment) -> Result<Report> {
    let plan = &exp.plan;
    // Groups: (condition index, strength) in plan order.
    let mut groups: Vec<(usize, f64)> = Vec::new();
    let units = exp.units();
    let group_of = |u: &crate::experiment::Unit| (u.condition, u.config.strength);
    for u in &units {
        let g = group_of(u);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let label = |&(c, strength): &(usize, f64)| {
        let cp = &plan.conditions[c];
        let base = cp
            .name
            .clone()
            .unwrap_or_else(|| cp.condition.label().to_string());
        if cp.condition != Condition::None && cp.strengths.len() > 1 {
            format!("{base}, a = {strength}")
        } else {
            base
        }
    };
    let labels: Vec<String> = groups.iter().map(label).collect();

    let mut rows = Vec::new();
    let mut data: Vec<UnitData> = Vec::new();
    let mut done = 0;
    for u in &units {
        let dir = exp.unit_dir(u);
        let group = groups.iter().position(|g| *g == group_of(u)).unwrap_or(0);
        let run = RunInfo::read(&dir).ok();
        let status = UnitStatus {
            unit: u.clone(),
            state: state_of(exp, &dir, run.as_ref()),
        };
        let finished = run
            .as_ref()
            .filter(|r| r.status() == RunStatus::Finished)
            .and_then(final_numbers);
        if status.state == UnitState::Done {
            done += 1;
        }
        rows.push(UnitRow {
            name: u.name.clone(),
            group: labels[group].clone(),
            seed: u.config.seed,
            status: status.describe(plan.training.epochs),
            test_accuracy: finished.as_ref().map(|f| f.0),
            gamma: finished.as_ref().and_then(|f| f.1.clone()),
        });
        if let Some((test_accuracy, gamma)) = finished {
            data.push(UnitData {
                group,
                seed: u.config.seed,
                test_accuracy,
                gamma,
                curves: plan
                    .noise
                    .kinds
                    .iter()
                    .filter_map(|&k| plan_curve(exp, &dir, k))
                    .collect(),
                attacks: plan_attacks(exp, &dir),
            });
        }
    }

    let of_group = |g: usize| data.iter().filter(move |d| d.group == g);
    let none = groups
        .iter()
        .position(|&(c, _)| plan.conditions[c].condition == Condition::None);
    let shuffle_for = |g: usize| {
        let strength = groups[g].1;
        groups
            .iter()
            .position(|&(c, s)| plan.conditions[c].condition == Condition::Shuffle && s == strength)
    };
    let taps = plan.training.network(2).taps;

    // Clean accuracy and gamma.
    let clean_of =
        |g: usize| -> Vec<(u64, f64)> { of_group(g).map(|d| (d.seed, d.test_accuracy)).collect() };
    let mut group_rows = Vec::new();
    for (g, &(c, strength)) in groups.iter().enumerate() {
        let clean = clean_of(g);
        let values: Vec<f64> = clean.iter().map(|x| x.1).collect();
        let gammas: Vec<&Vec<f64>> = of_group(g).filter_map(|d| d.gamma.as_ref()).collect();
        let gamma = if gammas.is_empty() {
            Vec::new()
        } else {
            (0..taps.len())
                .map(|l| {
                    MeanSem::of(
                        &gammas
                            .iter()
                            .filter_map(|v| v.get(l).copied())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect()
        };
        group_rows.push(GroupRow {
            label: labels[g].clone(),
            condition: plan.conditions[c].condition,
            strength,
            seeds: clean.iter().map(|x| x.0).collect(),
            clean: (!values.is_empty()).then(|| MeanSem::of(&values)),
            clean_vs_none: none.filter(|&n| n != g).and_then(|n| {
                let d = paired_differences(&clean, &clean_of(n));
                (!d.is_empty()).then(|| MeanSem::of(&d))
            }),
            taps: taps.clone(),
            gamma,
        });
    }

    // Noise.
    let mut noise = Vec::new();
    for &kind in &plan.noise.kinds {
        let levels = plan.noise.levels.clone();
        let at = |g: usize, k: usize| -> Vec<(u64, f64)> {
            of_group(g)
                .filter_map(|d| {
                    d.curves
                        .iter()
                        .find(|c| c.kind == kind)
                        .map(|c| (d.seed, c.accuracy[k]))
                })
                .collect()
        };
        let mut curves = Vec::new();
        for (g, label) in labels.iter().enumerate() {
            if at(g, 0).is_empty() {
                continue;
            }
            curves.push(CurveRow {
                label: label.clone(),
                accuracy: (0..levels.len())
                    .map(|k| MeanSem::of(&at(g, k).iter().map(|x| x.1).collect::<Vec<_>>()))
                    .collect(),
            });
        }
        let mut differences = Vec::new();
        for g in 0..groups.len() {
            let condition = plan.conditions[groups[g].0].condition;
            let mut refs = Vec::new();
            if let Some(n) = none.filter(|&n| n != g) {
                refs.push((n, "None"));
            }
            if !matches!(condition, Condition::None | Condition::Shuffle) {
                if let Some(s) = shuffle_for(g) {
                    refs.push((s, "Shuffle"));
                }
            }
            for (r, name) in refs {
                let difference: Vec<MeanSem> = (0..levels.len())
                    .map(|k| MeanSem::of(&paired_differences(&at(g, k), &at(r, k))))
                    .collect();
                if difference.first().is_some_and(|d| d.n > 0) {
                    differences.push(DifferenceRow {
                        label: labels[g].clone(),
                        against: name.into(),
                        difference,
                    });
                }
            }
        }
        noise.push(NoiseSection {
            kind,
            levels,
            curves,
            differences,
        });
    }

    // Minimal perturbations.
    let norms = distinct_norms(plan.attacks.iter().map(|x| x.norm));
    let mut perturbations = Vec::new();
    for &norm in &norms {
        let attacks: Vec<String> = plan
            .attacks
            .iter()
            .filter(|a| a.norm == norm)
            .map(|a| a.attack.label().to_string())
            .collect();
        for (g, label) in labels.iter().enumerate() {
            let best: Vec<(u64, Vec<f32>)> = of_group(g)
                .filter(|d| {
                    // Only runs with every attack of this norm count.
                    d.attacks.iter().filter(|r| r.config.norm == norm).count() == attacks.len()
                })
                .filter_map(|d| best_distances(&d.attacks, norm).map(|b| (d.seed, b)))
                .collect();
            if best.is_empty() {
                continue;
            }
            let samples = best.iter().map(|b| b.1.len()).min().unwrap_or(0);
            let mean_of_medians = |idx: &[usize]| -> Option<f64> {
                let mut sum = 0.0;
                for (_, b) in &best {
                    let picked: Vec<f32> = idx.iter().map(|&i| b[i]).collect();
                    sum += median(&picked)? as f64;
                }
                Some(sum / best.len() as f64)
            };
            let all: Vec<usize> = (0..samples).collect();
            perturbations.push(PerturbationRow {
                label: label.clone(),
                norm,
                attacks: attacks.clone(),
                per_seed: best
                    .iter()
                    .map(|(s, b)| (*s, median(&b[..samples]).map(|m| m as f64)))
                    .collect(),
                median: mean_of_medians(&all),
                interval: bootstrap_interval(samples, RESAMPLES, 0, &mut |idx| {
                    mean_of_medians(idx)
                }),
                samples,
            });
        }
    }

    let mut report = Report {
        name: plan.name.clone(),
        done,
        units: rows,
        groups: group_rows,
        noise,
        perturbations,
        summary: Vec::new(),
    };
    report.summary = summary(&report);
    Ok(report)
}

/// The norms in `norms`, each once, in the order they first come.
fn distinct_norms(norms: impl Iterator<Item = Norm>) -> Vec<Norm> {
    let mut out: Vec<Norm> = Vec::new();
    for n in norms {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// "0.41 ± 0.08".
fn pm(m: &MeanSem) -> String {
    if m.n > 1 {
        format!("{:.3} ± {:.3}", m.mean, m.sem)
    } else {
        format!("{:.3} (one seed)", m.mean)
    }
}

/// "+0.22 ± 0.06 (higher)" for a paired difference.
fn verdict(d: &MeanSem) -> String {
    let words = if d.n < 2 {
        "one seed: no error to judge by"
    } else if d.beyond(2.0) && d.mean > 0.0 {
        "higher, beyond 2 standard errors"
    } else if d.beyond(2.0) {
        "lower, beyond 2 standard errors"
    } else {
        "no clear difference"
    };
    format!(
        "{:+.3} ± {:.3} over {} paired seeds: {words}",
        d.mean, d.sem, d.n
    )
}

/// The opening lines, from the numbers.
fn summary(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let total = r.units.len();
    if r.done == total {
        out.push(format!("All {total} units are done."));
    } else {
        let missing: Vec<String> = r
            .units
            .iter()
            .filter(|u| u.status != "done")
            .map(|u| format!("{} ({})", u.name, u.status))
            .collect();
        out.push(format!(
            "Partial report: {} of {total} units are done; missing: {}.",
            r.done,
            missing.join("; ")
        ));
    }
    let clean: Vec<String> = r
        .groups
        .iter()
        .filter_map(|g| g.clean.as_ref().map(|c| format!("{} {}", g.label, pm(c))))
        .collect();
    if !clean.is_empty() {
        out.push(format!(
            "Clean test accuracy (mean ± SEM over seeds): {}.",
            clean.join(", ")
        ));
    }
    for s in &r.noise {
        let Some(k) = s.levels.len().checked_sub(1) else {
            continue;
        };
        let at: Vec<String> = s
            .curves
            .iter()
            .map(|c| format!("{} {}", c.label, pm(&c.accuracy[k])))
            .collect();
        if at.is_empty() {
            continue;
        }
        out.push(format!(
            "Accuracy under {} noise at level {}: {}.",
            s.kind.name(),
            s.levels[k],
            at.join(", ")
        ));
        for d in &s.differences {
            out.push(format!(
                "{} minus {} at that level: {}.",
                d.label,
                d.against,
                verdict(&d.difference[k])
            ));
        }
    }
    // Is robustness bought with clean accuracy? Against None, per group.
    if let Some(first) = r.noise.first() {
        let k = first.levels.len().saturating_sub(1);
        for g in &r.groups {
            let (Some(clean), Some(noisy)) = (
                g.clean_vs_none.as_ref(),
                first
                    .differences
                    .iter()
                    .find(|d| d.label == g.label && d.against == "None")
                    .map(|d| d.difference[k]),
            ) else {
                continue;
            };
            if clean.n < 2 {
                continue;
            }
            let compare = |d: &MeanSem| match (d.beyond(2.0), d.mean > 0.0) {
                (true, true) => "higher than",
                (true, false) => "lower than",
                (false, _) => "not clearly different from",
            };
            let words = format!(
                "accuracy under noise {} None's and clean accuracy {} None's",
                compare(&noisy),
                compare(clean)
            );
            out.push(format!(
                "{}: {words} (clean {:+.3} ± {:.3}, {} noise {:+.3} ± {:.3}).",
                g.label,
                clean.mean,
                clean.sem,
                first.kind.name(),
                noisy.mean,
                noisy.sem
            ));
        }
    }
    let norms = distinct_norms(r.perturbations.iter().map(|x| x.norm));
    for norm in norms {
        let rows: Vec<&PerturbationRow> =
            r.perturbations.iter().filter(|p| p.norm == norm).collect();
        let cells: Vec<String> = rows
            .iter()
            .map(|p| {
                let m = p.median.map_or("infinite".into(), |m| format!("{m:.4}"));
                let i = p
                    .interval
                    .map_or(String::new(), |(a, b)| format!(" [{a:.4}, {b:.4}]"));
                format!("{} {m}{i}", p.label)
            })
            .collect();
        out.push(format!(
            "Median minimal {norm:?} perturbation (best of {}; mean over seeds, 95% bootstrap interval over {} samples): {}.",
            rows[0].attacks.join(", "),
            rows[0].samples,
            cells.join(", ")
        ));
        if let Some(none) = rows.iter().find(|p| p.label == "None") {
            for p in rows.iter().filter(|p| p.label != "None") {
                if let (Some((a, b)), Some((c, d))) = (p.interval, none.interval) {
                    let words = if a > d {
                        "above None's, the intervals apart"
                    } else if b < c {
                        "below None's, the intervals apart"
                    } else {
                        "not clearly different from None's (the intervals overlap)"
                    };
                    out.push(format!("{}: {norm:?} robustness {words}.", p.label));
                }
            }
        }
    }
    out
}

/// A CSV field.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a CSV of `header` and `rows`.
fn csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for r in rows {
        text += &r.iter().map(|f| field(f)).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// Writes the report of `exp` into its report folder (waiting for another process that is
/// writing it) and returns it.
pub fn write_report(exp: &Experiment) -> Result<Report> {
    let dir = exp.report_dir();
    let mut lock = None;
    for _ in 0..120 {
        match FolderLock::acquire(&dir) {
            Ok(l) => {
                lock = Some(l);
                break;
            }
            Err(Error::File { .. }) => std::thread::sleep(std::time::Duration::from_millis(500)),
            Err(e) => return Err(e),
        }
    }
    let _lock = match lock {
        Some(l) => l,
        None => FolderLock::acquire(&dir)?,
    };
    let r = build_report(exp)?;
    let json =
        serde_json::to_string_pretty(&r).map_err(|e| Error::file(dir.display(), e.to_string()))?;
    write_atomic(&dir.join("numbers.json"), json.as_bytes())?;
    write_tables(&dir, &r)?;
    let figures = write_figures(&dir, &r)?;
    write_atomic(
        &dir.join("report.md"),
        markdown(exp, &r, &figures).as_bytes(),
    )?;
    Ok(r)
}

/// The CSV files.
fn write_tables(dir: &Path, r: &Report) -> Result<()> {
    let units: Vec<Vec<String>> = r
        .units
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.group.clone(),
                u.seed.to_string(),
                u.status.clone(),
                opt(u.test_accuracy),
            ]
        })
        .collect();
    csv(
        &dir.join("units.csv"),
        &["unit", "group", "seed", "status", "test_accuracy"],
        &units,
    )?;
    let mut clean = Vec::new();
    let mut gamma = Vec::new();
    for g in &r.groups {
        if let Some(c) = &g.clean {
            clean.push(vec![
                g.label.clone(),
                c.n.to_string(),
                c.mean.to_string(),
                c.sem.to_string(),
                opt(g.clean_vs_none.map(|d| d.mean)),
                opt(g.clean_vs_none.map(|d| d.sem)),
            ]);
        }
        for (t, m) in g.taps.iter().zip(&g.gamma) {
            gamma.push(vec![
                g.label.clone(),
                t.to_string(),
                m.n.to_string(),
                m.mean.to_string(),
                m.sem.to_string(),
            ]);
        }
    }
    csv(
        &dir.join("clean_accuracy.csv"),
        &[
            "group",
            "seeds",
            "mean",
            "sem",
            "minus_none_mean",
            "minus_none_sem",
        ],
        &clean,
    )?;
    csv(
        &dir.join("gamma.csv"),
        &["group", "tap", "seeds", "mean", "sem"],
        &gamma,
    )?;
    for s in &r.noise {
        let mut rows = Vec::new();
        for c in &s.curves {
            for (l, m) in s.levels.iter().zip(&c.accuracy) {
                rows.push(vec![
                    c.label.clone(),
                    "accuracy".into(),
                    l.to_string(),
                    m.n.to_string(),
                    m.mean.to_string(),
                    m.sem.to_string(),
                ]);
            }
        }
        for d in &s.differences {
            for (l, m) in s.levels.iter().zip(&d.difference) {
                rows.push(vec![
                    d.label.clone(),
                    format!("minus {}", d.against),
                    l.to_string(),
                    m.n.to_string(),
                    m.mean.to_string(),
                    m.sem.to_string(),
                ]);
            }
        }
        csv(
            &dir.join(format!("noise_{}.csv", s.kind.name())),
            &["group", "quantity", "level", "seeds", "mean", "sem"],
            &rows,
        )?;
    }
    let rows: Vec<Vec<String>> = r
        .perturbations
        .iter()
        .map(|p| {
            vec![
                p.label.clone(),
                format!("{:?}", p.norm),
                p.attacks.join(" "),
                p.per_seed.len().to_string(),
                p.samples.to_string(),
                opt(p.median),
                opt(p.interval.map(|i| i.0)),
                opt(p.interval.map(|i| i.1)),
            ]
        })
        .collect();
    csv(
        &dir.join("perturbations.csv"),
        &[
            "group", "norm", "attacks", "seeds", "samples", "median", "lower_95", "upper_95",
        ],
        &rows,
    )
}

/// The PNG figures, as (file name, caption).
fn write_figures(dir: &Path, r: &Report) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let colour_of =
        |label: &str| palette(r.groups.iter().position(|g| g.label == label).unwrap_or(0));
    for s in &r.noise {
        if s.curves.is_empty() {
            continue;
        }
        let band = |m: &[MeanSem]| -> Vec<(f64, f64)> {
            m.iter().map(|x| (x.mean - x.sem, x.mean + x.sem)).collect()
        };
        let line = |label: &str, m: &[MeanSem]| Series {
            label: label.to_string(),
            colour: colour_of(label),
            mark: Mark::Line {
                points: s.levels.iter().zip(m).map(|(l, x)| (*l, x.mean)).collect(),
                band: Some(band(m)),
            },
        };
        let name = format!("noise_{}.png", s.kind.name());
        render(
            &Chart {
                title: format!(
                    "Accuracy under {} noise (mean ± SEM over seeds)",
                    s.kind.name()
                ),
                x_label: "noise level".into(),
                y_label: "test accuracy".into(),
                series: s
                    .curves
                    .iter()
                    .map(|c| line(&c.label, &c.accuracy))
                    .collect(),
                ..Chart::default()
            },
            &dir.join(&name),
        )?;
        out.push((
            name,
            format!("Fig. 4: accuracy under {} noise.", s.kind.name()),
        ));
        let against_none: Vec<Series> = s
            .differences
            .iter()
            .filter(|d| d.against == "None")
            .map(|d| line(&d.label, &d.difference))
            .collect();
        if !against_none.is_empty() {
            let name = format!("noise_{}_minus_none.png", s.kind.name());
            render(
                &Chart {
                    title: format!(
                        "Accuracy minus None's, {} noise (paired by seed)",
                        s.kind.name()
                    ),
                    x_label: "noise level".into(),
                    y_label: "accuracy difference".into(),
                    series: against_none,
                    reference_y: Some(0.0),
                    ..Chart::default()
                },
                &dir.join(&name),
            )?;
            out.push((
                name,
                "Paired differences against None, ± one SEM over seeds.".into(),
            ));
        }
    }
    // Robustness against clean accuracy.
    if let Some(first) = r.noise.first() {
        let k = first.levels.len().saturating_sub(1);
        let series: Vec<Series> = r
            .groups
            .iter()
            .filter_map(|g| {
                let clean = g.clean?;
                let noisy = first.curves.iter().find(|c| c.label == g.label)?.accuracy[k];
                Some(Series {
                    label: g.label.clone(),
                    colour: colour_of(&g.label),
                    mark: Mark::Points {
                        points: vec![(clean.mean, noisy.mean)],
                        x_err: vec![clean.sem],
                        y_err: vec![(noisy.mean - noisy.sem, noisy.mean + noisy.sem)],
                    },
                })
            })
            .collect();
        if !series.is_empty() {
            let name = "accuracy_vs_robustness.png".to_string();
            render(
                &Chart {
                    title: "Is robustness bought with accuracy?".into(),
                    x_label: "clean test accuracy".into(),
                    y_label: format!(
                        "accuracy at {} noise {}",
                        first.kind.name(),
                        first.levels[k]
                    ),
                    series,
                    ..Chart::default()
                },
                &dir.join(&name),
            )?;
            out.push((
                name,
                "Each condition and strength: clean accuracy against accuracy at the strongest noise, ± one SEM.".into(),
            ));
        }
    }
    let norms = distinct_norms(r.perturbations.iter().map(|x| x.norm));
    for norm in norms {
        let rows: Vec<&PerturbationRow> =
            r.perturbations.iter().filter(|p| p.norm == norm).collect();
        let series: Vec<Series> = rows
            .iter()
            .enumerate()
            .filter_map(|(k, p)| {
                let m = p.median?;
                let (lo, hi) = p.interval.unwrap_or((m, m));
                Some(Series {
                    label: p.label.clone(),
                    colour: colour_of(&p.label),
                    mark: Mark::Points {
                        points: vec![(k as f64, m)],
                        x_err: vec![],
                        y_err: vec![(lo, hi)],
                    },
                })
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let name = format!("perturbation_{norm:?}.png").to_lowercase();
        render(
            &Chart {
                title: format!(
                    "Median minimal {norm:?} perturbation ({})",
                    rows[0].attacks.join(", ")
                ),
                x_label: "condition".into(),
                y_label: format!("{norm:?} distance"),
                x_ticks: Some(
                    rows.iter()
                        .enumerate()
                        .map(|(k, p)| (k as f64, p.label.clone()))
                        .collect(),
                ),
                series,
                ..Chart::default()
            },
            &dir.join(&name),
        )?;
        out.push((
            name,
            format!("Median minimal {norm:?} distance, mean over seeds, 95% bootstrap interval over samples."),
        ));
    }
    let regularised: Vec<&GroupRow> = r.groups.iter().filter(|g| !g.gamma.is_empty()).collect();
    if !regularised.is_empty() {
        let width = 0.8 / regularised.len() as f64;
        let series = regularised
            .iter()
            .enumerate()
            .map(|(k, g)| {
                let x = |t: usize| t as f64 - 0.4 + width * (k as f64 + 0.5);
                Series {
                    label: g.label.clone(),
                    colour: colour_of(&g.label),
                    mark: Mark::Bars {
                        bars: g
                            .gamma
                            .iter()
                            .enumerate()
                            .map(|(t, m)| (x(t), m.mean))
                            .collect(),
                        width,
                        err: g
                            .gamma
                            .iter()
                            .map(|m| (m.mean - m.sem, m.mean + m.sem))
                            .collect(),
                    },
                }
            })
            .collect();
        let name = "gamma.png".to_string();
        render(
            &Chart {
                title: "Final layer weights gamma (Table 1)".into(),
                x_label: "tapped conv layer".into(),
                y_label: "gamma".into(),
                x_ticks: Some(
                    regularised[0]
                        .taps
                        .iter()
                        .enumerate()
                        .map(|(t, c)| (t as f64, format!("conv {c}")))
                        .collect(),
                ),
                series,
                reference_y: Some(0.0),
            },
            &dir.join(&name),
        )?;
        out.push((
            name,
            "Table 1: final gamma per tap, mean ± SEM over seeds.".into(),
        ));
    }
    Ok(out)
}

/// `report.md`.
fn markdown(exp: &Experiment, r: &Report, figures: &[(String, String)]) -> String {
    let plan = &exp.plan;
    let t = &plan.training;
    let mut md = format!("# Experiment {}\n\n", r.name);
    for line in &r.summary {
        let _ = writeln!(md, "- {line}");
    }
    let _ = write!(
        md,
        "\nSettings: {} ({} training, {} test images), {:?} width {}, {} epochs, batch {}, lr {} ({:?} schedule), seeds {:?}; batch-norm statistics from {:?}. Noise: {} test images, noise seed {}. Made by neureg {}.\n\n",
        t.data.display(),
        t.train_limit,
        t.test_limit,
        t.depth,
        t.width,
        t.epochs,
        t.batch,
        t.lr,
        t.schedule,
        plan.seeds,
        t.bn_statistics,
        plan.noise.samples,
        plan.noise.seed,
        env!("CARGO_PKG_VERSION")
    );
    for (file, caption) in figures {
        let _ = writeln!(md, "![{caption}]({file})\n\n*{caption}*\n");
    }
    md += "## Clean accuracy and layer weights (Table 1)\n\n| group | seeds | test accuracy | minus None | gamma per tap |\n|---|---|---|---|---|\n";
    for g in &r.groups {
        let gamma: Vec<String> = g.gamma.iter().map(|m| format!("{:.2}", m.mean)).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            g.label,
            g.seeds.len(),
            g.clean.as_ref().map(pm).unwrap_or_default(),
            g.clean_vs_none.as_ref().map(verdict).unwrap_or_default(),
            if gamma.is_empty() {
                "-".into()
            } else {
                gamma.join(" ")
            }
        );
    }
    for s in &r.noise {
        let _ = write!(md, "\n## {} noise\n\n| group |", s.kind.name());
        for l in &s.levels {
            let _ = write!(md, " {l} |");
        }
        md += "\n|---|";
        md += &"---|".repeat(s.levels.len());
        md.push('\n');
        for c in &s.curves {
            let _ = write!(md, "| {} |", c.label);
            for m in &c.accuracy {
                let _ = write!(md, " {:.3} ± {:.3} |", m.mean, m.sem);
            }
            md.push('\n');
        }
        for d in &s.differences {
            let _ = write!(md, "| {} minus {} |", d.label, d.against);
            for m in &d.difference {
                let _ = write!(md, " {:+.3} ± {:.3} |", m.mean, m.sem);
            }
            md.push('\n');
        }
    }
    if !r.perturbations.is_empty() {
        md += "\n## Minimal perturbations\n\n| group | norm | attacks | seeds | samples | median | 95% interval |\n|---|---|---|---|---|---|---|\n";
        for p in &r.perturbations {
            let _ = writeln!(
                md,
                "| {} | {:?} | {} | {} | {} | {} | {} |",
                p.label,
                p.norm,
                p.attacks.join(", "),
                p.per_seed.len(),
                p.samples,
                p.median.map_or("infinite".into(), |m| format!("{m:.4}")),
                p.interval
                    .map_or(String::new(), |(a, b)| format!("{a:.4} to {b:.4}"))
            );
        }
    }
    md += "\n## Units\n\n| unit | group | seed | status | test accuracy |\n|---|---|---|---|---|\n";
    for u in &r.units {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            u.name,
            u.group,
            u.seed,
            u.status,
            u.test_accuracy.map_or(String::new(), |a| format!("{a:.3}"))
        );
    }
    md += "\nNumbers: `numbers.json` and the CSV files beside this report. Statistics: mean ± SEM over seeds; differences paired by seed and called only beyond two standard errors; perturbation intervals are 95% bootstrap percentile intervals over samples.\n";
    md
}
