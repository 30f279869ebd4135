//! The report's opening lines, written from the numbers and their tests.

use super::*;
use crate::stats::MeanSem;

/// "0.41 ± 0.08".
pub(super) fn pm(m: &MeanSem) -> String {
    if m.n > 1 {
        format!("{:.3} ± {:.3}", m.mean, m.sem)
    } else {
        format!("{:.3} (one seed)", m.mean)
    }
}

/// "+0.022 [-0.010, 0.054], p = 0.250" for an uncorrected paired difference.
pub(super) fn difference(d: &PairedComparison) -> String {
    if d.n < 2 {
        return format!("{:+.3} (one seed)", d.mean);
    }
    format!(
        "{:+.3} [{:.3}, {:.3}], p = {}",
        d.mean,
        d.interval.0,
        d.interval.1,
        comparisons::p_text(d.p)
    )
}

/// The opening lines: what is done, the primary measure and its declared comparisons, then the
/// secondary families.
pub(super) fn summary(r: &Report) -> Vec<String> {
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
    if let Some(first) = r.noise.first() {
        let means: Vec<String> = first
            .curves
            .iter()
            .map(|c| format!("{} {}", c.label, pm(&c.mean_over_levels)))
            .collect();
        if !means.is_empty() {
            out.push(format!(
                "Primary measure, declared before the numbers: the mean accuracy over the {} noise \
                 levels {} to {} (mean ± SEM over seeds): {}.",
                first.kind.name(),
                first.levels.first().copied().unwrap_or(0.0),
                first.levels.last().copied().unwrap_or(0.0),
                means.join(", ")
            ));
        }
    }
    let primary: Vec<&Comparison> = r.comparisons.iter().filter(|c| c.primary).collect();
    if let Some(c) = primary.first() {
        out.push(format!(
            "Paired by seed, 95% t interval, exact sign-flip p, Holm-corrected over these {} \
             comparisons:",
            c.family
        ));
    }
    for c in &primary {
        out.push(format!(
            "{} minus {}: {}.",
            c.label,
            c.against,
            c.describe()
        ));
    }
    // Secondary families, one line per family.
    let mut measures: Vec<&str> = Vec::new();
    for c in r.comparisons.iter().filter(|c| !c.primary) {
        if !measures.contains(&c.measure.as_str()) {
            measures.push(&c.measure);
        }
    }
    for measure in measures {
        let rows: Vec<String> = r
            .comparisons
            .iter()
            .filter(|c| !c.primary && c.measure == measure)
            .map(|c| {
                format!(
                    "{} minus {} {:+.3} [{:.3}, {:.3}], Holm p {} ({})",
                    c.label,
                    c.against,
                    c.test.mean,
                    c.test.interval.0,
                    c.test.interval.1,
                    comparisons::p_text(c.p_holm),
                    c.words()
                )
            })
            .collect();
        out.push(format!(
            "Secondary, {measure} (Holm within this family): {}.",
            rows.join("; ")
        ));
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
    }
    out
}
