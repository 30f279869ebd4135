//! Gathering an experiment's units into the report's rows and sections.

use super::*;
use crate::error::Result;
use crate::eval::attacks::Norm;
use crate::eval::minimal::{median, AttackResult};
use crate::eval::noise::NoiseCurve;
use crate::eval::results::best_distances;
use crate::experiment::status::{plan_attacks, plan_curve, state_of, UnitState, UnitStatus};
use crate::experiment::Experiment;
use crate::runs::config::Condition;
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;
use crate::stats::{bootstrap_interval, paired_comparison, paired_differences, MeanSem};

use crate::eval::comparisons::{family, Comparison, Member};

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
pub(super) fn final_numbers(run: &RunInfo) -> Option<(f64, Option<Vec<f64>>)> {
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
                (!d.is_empty()).then(|| paired_comparison(&d, 0))
            }),
            taps: taps.clone(),
            gamma,
        });
    }

    let members: Vec<Member> = groups
        .iter()
        .zip(&labels)
        .map(|(&(c, strength), label)| Member {
            label,
            condition: plan.conditions[c].condition,
            strength,
        })
        .collect();
    let mut comparisons: Vec<Comparison> = Vec::new();

    // Noise.
    let mut noise = Vec::new();
    for (kind_index, &kind) in plan.noise.kinds.iter().enumerate() {
        let levels = plan.noise.config.levels.clone();
        let strongest = levels.len().saturating_sub(1);
        // Per group, per seed: the accuracy at each level.
        let curves_of = |g: usize| -> Vec<(u64, Vec<f64>)> {
            of_group(g)
                .filter_map(|d| {
                    d.curves
                        .iter()
                        .find(|c| c.kind == kind)
                        .map(|c| (d.seed, c.accuracy.clone()))
                })
                .collect()
        };
        let at = |g: usize, k: usize| -> Vec<(u64, f64)> {
            curves_of(g).into_iter().map(|(s, a)| (s, a[k])).collect()
        };
        // The pre-declared summary: the mean accuracy over the levels.
        let mean_of = |g: usize| -> Vec<(u64, f64)> {
            curves_of(g)
                .into_iter()
                .map(|(s, a)| (s, a.iter().sum::<f64>() / a.len().max(1) as f64))
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
                mean_over_levels: MeanSem::of(&mean_of(g).iter().map(|x| x.1).collect::<Vec<_>>()),
            });
        }
        let mut differences = Vec::new();
        if let Some(n) = none {
            for g in (0..groups.len()).filter(|&g| g != n) {
                let difference: Vec<PairedComparison> = (0..levels.len())
                    .map(|k| paired_comparison(&paired_differences(&at(g, k), &at(n, k)), 0))
                    .collect();
                if difference.first().is_some_and(|d| d.n > 0) {
                    differences.push(DifferenceRow {
                        label: labels[g].clone(),
                        against: "None".into(),
                        difference,
                        mean_over_levels: paired_comparison(
                            &paired_differences(&mean_of(g), &mean_of(n)),
                            0,
                        ),
                    });
                }
            }
        }
        let all: Vec<usize> = (0..groups.len()).collect();
        let values =
            |f: &dyn Fn(usize) -> Vec<(u64, f64)>| all.iter().map(|&g| f(g)).collect::<Vec<_>>();
        comparisons.extend(family(
            &members,
            &values(&mean_of),
            &format!("mean accuracy over the {} noise levels", kind.name()),
            kind_index == 0,
        ));
        if !levels.is_empty() {
            comparisons.extend(family(
                &members,
                &values(&|g| at(g, strongest)),
                &format!("accuracy at {} noise {}", kind.name(), levels[strongest]),
                false,
            ));
        }
        noise.push(NoiseSection {
            kind,
            levels,
            curves,
            differences,
        });
    }
    comparisons.extend(family(
        &members,
        &(0..groups.len()).map(clean_of).collect::<Vec<_>>(),
        "clean test accuracy",
        false,
    ));

    // Minimal perturbations.
    let norms = distinct_norms(plan.attacks.iter().map(|x| x.norm));
    let mut perturbations = Vec::new();
    for &norm in &norms {
        // Per group, per seed with a finite median: the median over samples.
        let mut medians: Vec<Vec<(u64, f64)>> = vec![Vec::new(); groups.len()];
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
            medians[g] = best
                .iter()
                .filter_map(|(s, b)| median(&b[..samples]).map(|m| (*s, m as f64)))
                .collect();
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
        comparisons.extend(family(
            &members,
            &medians,
            &format!("median minimal {norm:?} perturbation"),
            false,
        ));
    }

    let mut report = Report {
        name: plan.name.clone(),
        done,
        units: rows,
        groups: group_rows,
        noise,
        perturbations,
        comparisons,
        summary: Vec::new(),
        figures: Vec::new(),
    };
    report.summary = summary(&report);
    Ok(report)
}

/// The norms in `norms`, each once, in the order they first come.
pub(super) fn distinct_norms(norms: impl Iterator<Item = Norm>) -> Vec<Norm> {
    let mut out: Vec<Norm> = Vec::new();
    for n in norms {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}
