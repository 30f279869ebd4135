//! `report.md`: the summary, the tables and the figures in one page.

use std::fmt::Write as _;

use super::*;
use crate::experiment::Experiment;

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
