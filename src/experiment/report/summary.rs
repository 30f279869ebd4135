//! The report's opening lines, written from the numbers and their errors.

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

/// "+0.22 ± 0.06 (higher)" for a paired difference.
pub(super) fn verdict(d: &MeanSem) -> String {
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
