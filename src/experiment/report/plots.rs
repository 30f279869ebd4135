//! The report's PNG figures.

use std::path::Path;

use super::*;
use crate::error::Result;
use crate::figures::{palette, render, Chart, Mark, Series};
use crate::stats::MeanSem;

/// The PNG figures, as (file name, caption).
pub(super) fn write_figures(dir: &Path, r: &Report) -> Result<Vec<(String, String)>> {
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
            .map(|d| Series {
                label: d.label.clone(),
                colour: colour_of(&d.label),
                mark: Mark::Line {
                    points: s
                        .levels
                        .iter()
                        .zip(&d.difference)
                        .map(|(l, x)| (*l, x.mean))
                        .collect(),
                    band: Some(d.difference.iter().map(|x| x.interval).collect()),
                },
            })
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
                "Paired differences against None with their 95% t intervals over seeds (uncorrected).".into(),
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
