//! The declared comparisons as a table: per measure (the primary marked), each pair's paired
//! difference with its 95% t interval, exact p, Holm-corrected p and verdict (docs/method.md
//! section 10). The Robustness and Experiment tabs both show it.

use eframe::egui;

use crate::eval::comparisons::{p_text, Comparison};

/// Shows `comparisons` in a grid named `id`.
pub fn comparisons_grid(ui: &mut egui::Ui, id: &str, comparisons: &[Comparison]) {
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        for h in [
            "measure",
            "comparison",
            "seeds",
            "difference [95% interval]",
            "p",
            "Holm p",
            "verdict",
        ] {
            ui.strong(h);
        }
        ui.end_row();
        for c in comparisons {
            let t = &c.test;
            ui.label(if c.primary {
                format!("{} (primary)", c.measure)
            } else {
                c.measure.clone()
            });
            ui.label(format!("{} − {}", c.label, c.against));
            ui.label(t.n.to_string());
            ui.monospace(format!(
                "{:+.3} [{:+.3}, {:+.3}]",
                t.mean, t.interval.0, t.interval.1
            ));
            ui.monospace(p_text(t.p));
            ui.monospace(p_text(c.p_holm));
            let words = c.words();
            if words == "no clear difference" {
                ui.label(words);
            } else {
                ui.strong(words);
            }
            ui.end_row();
        }
    });
}
