//! `report.md`: the summary, the tables and the figures in one page.

use std::fmt::Write as _;

use super::*;
use crate::experiment::Experiment;

/// A count where 0 means every one.
fn limit(n: usize) -> String {
    if n == 0 {
        "all".into()
    } else {
        n.to_string()
    }
}

/// `report.md`.
pub(super) fn markdown(exp: &Experiment, r: &Report, figures: &[(String, String)]) -> String {
    let plan = &exp.plan;
    let t = &plan.training;
    let mut md = format!("# Experiment {}\n\n", r.name);
    for line in &r.summary {
        let _ = writeln!(md, "- {line}");
    }
    let _ = write!(
        md,
        "\nSettings: {} ({} training, {} test images), {:?} width {}, {} epochs, batch {} (similarity batch {}), lr {} ({:?} schedule), seeds {:?}; batch-norm statistics from {:?}, recomputed over {} batches before each checkpoint. Noise: {} test images, noise seed {}. Made by neureg {}.\n\n",
        t.data.display(),
        limit(t.train_limit),
        limit(t.test_limit),
        t.depth,
        t.width,
        t.epochs,
        t.batch,
        t.similarity_batch_size(),
        t.lr,
        t.schedule,
        plan.seeds,
        t.bn_statistics,
        t.precise_bn_batches,
        plan.noise.config.samples,
        plan.noise.config.seed,
        env!("CARGO_PKG_VERSION")
    );
    for (file, caption) in figures {
        let _ = writeln!(md, "![{caption}]({file})\n\n*{caption}*\n");
    }
    if !r.comparisons.is_empty() {
        md += "## Declared comparisons\n\nEach pair's seeds give paired differences: mean, 95% Student's t interval, exact sign-flip permutation p, Holm's correction within the family (one family per measure; the first is the pre-declared primary measure), effect size (mean / SD of the differences) and, where there is no clear difference, the seeds needed to settle it: enough for a paired t-test's 80% power at the observed effect, and for the exact test to reach p < 0.05 after Holm's factor.\n\n| measure | comparison | seeds | difference | 95% interval | p | Holm p | effect | verdict | seeds to settle |\n|---|---|---|---|---|---|---|---|---|---|\n";
        for c in &r.comparisons {
            let t = &c.test;
            let _ = writeln!(
                md,
                "| {}{} | {} minus {} | {} | {:+.4} | {:.4} to {:.4} | {} | {} | {:.2} | {} | {} |",
                c.measure,
                if c.primary { " (primary)" } else { "" },
                c.label,
                c.against,
                t.n,
                t.mean,
                t.interval.0,
                t.interval.1,
                comparisons::p_text(t.p),
                comparisons::p_text(c.p_holm),
                t.effect,
                c.words(),
                t.seeds_for_power.map_or("-".into(), |n| n.to_string())
            );
        }
        md.push('\n');
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
            g.clean_vs_none.as_ref().map(difference).unwrap_or_default(),
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
        md += " mean over levels |\n|---|";
        md += &"---|".repeat(s.levels.len() + 1);
        md.push('\n');
        for c in &s.curves {
            let _ = write!(md, "| {} |", c.label);
            for m in &c.accuracy {
                let _ = write!(md, " {:.3} ± {:.3} |", m.mean, m.sem);
            }
            let _ = writeln!(md, " {} |", pm(&c.mean_over_levels));
        }
        for d in &s.differences {
            let _ = write!(md, "| {} minus {} |", d.label, d.against);
            for m in &d.difference {
                let _ = write!(
                    md,
                    " {:+.3} [{:.3}, {:.3}] |",
                    m.mean, m.interval.0, m.interval.1
                );
            }
            let m = &d.mean_over_levels;
            let _ = writeln!(
                md,
                " {:+.3} [{:.3}, {:.3}] |",
                m.mean, m.interval.0, m.interval.1
            );
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
    md += "\nNumbers: `numbers.json` and the CSV files beside this report. Statistics: mean ± SEM over seeds; differences paired by seed with 95% Student's t intervals (uncorrected in the noise tables; the declared comparisons above are tested and Holm-corrected); perturbation intervals are 95% bootstrap percentile intervals over samples.\n";
    md
}
