//! The report's CSV files.

use std::path::Path;

use super::*;
use crate::atomic::write_atomic;
use crate::error::Result;

/// A CSV field.
pub(super) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a CSV of `header` and `rows`.
pub(super) fn csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for r in rows {
        text += &r.iter().map(|f| field(f)).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

pub(super) fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// The CSV files.
pub(super) fn write_tables(dir: &Path, r: &Report) -> Result<()> {
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
                opt(g.clean_vs_none.map(|d| d.interval.0)),
                opt(g.clean_vs_none.map(|d| d.interval.1)),
                opt(g.clean_vs_none.map(|d| d.p)),
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
            "minus_none_lower_95",
            "minus_none_upper_95",
            "minus_none_p",
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
        let level = |l: Option<&f64>| l.map_or("mean".to_string(), |l| l.to_string());
        for c in &s.curves {
            let all = s.levels.iter().map(Some).chain([None]);
            for (l, m) in all.zip(c.accuracy.iter().chain([&c.mean_over_levels])) {
                rows.push(vec![
                    c.label.clone(),
                    "accuracy".into(),
                    level(l),
                    m.n.to_string(),
                    m.mean.to_string(),
                    m.sem.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
        for d in &s.differences {
            let all = s.levels.iter().map(Some).chain([None]);
            for (l, m) in all.zip(d.difference.iter().chain([&d.mean_over_levels])) {
                rows.push(vec![
                    d.label.clone(),
                    format!("minus {}", d.against),
                    level(l),
                    m.n.to_string(),
                    m.mean.to_string(),
                    (m.sd / (m.n as f64).sqrt()).to_string(),
                    m.interval.0.to_string(),
                    m.interval.1.to_string(),
                    m.p.to_string(),
                ]);
            }
        }
        csv(
            &dir.join(format!("noise_{}.csv", s.kind.name())),
            &[
                "group", "quantity", "level", "seeds", "mean", "sem", "lower_95", "upper_95", "p",
            ],
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
    )?;
    let rows: Vec<Vec<String>> = r
        .comparisons
        .iter()
        .map(|c| {
            let t = &c.test;
            vec![
                c.measure.clone(),
                c.primary.to_string(),
                c.label.clone(),
                c.against.clone(),
                t.n.to_string(),
                t.mean.to_string(),
                t.interval.0.to_string(),
                t.interval.1.to_string(),
                t.p.to_string(),
                t.t_p.to_string(),
                c.p_holm.to_string(),
                c.family.to_string(),
                t.effect.to_string(),
                c.words().to_string(),
                t.seeds_for_power.map_or(String::new(), |n| n.to_string()),
            ]
        })
        .collect();
    csv(
        &dir.join("comparisons.csv"),
        &[
            "measure",
            "primary",
            "group",
            "against",
            "seeds",
            "mean_difference",
            "lower_95",
            "upper_95",
            "p_sign_flip",
            "p_t_test",
            "p_holm",
            "family_size",
            "effect_size",
            "verdict",
            "seeds_for_80_power",
        ],
        &rows,
    )
}
