//! The comparisons between conditions that the reports and the Robustness tab state, declared
//! before any number is read (docs/method.md, "Statistics").
//!
//! Pairs: every condition against None, and Neural (model) against each control in the plan
//! (Shuffle at the same strength, the Pixel controls at the same strength, Blur). Measures, each
//! its own family: the pre-declared primary measure is the mean accuracy over all levels of the
//! plan's first kind of noise (the area under its curve over the levels' range); the secondary
//! ones are the strongest level of each kind, the mean over the levels of the other kinds, clean
//! accuracy and the median minimal perturbation of each norm. Within a family each pair's seeds
//! give paired differences, tested by the exact sign-flip permutation test and corrected by
//! Holm's method; a difference is "higher" or "lower" only when its corrected p is below 0.05.

use serde::{Deserialize, Serialize};

use crate::runs::config::Condition;
use crate::stats::paired::{ALPHA, POWER};
use crate::stats::power::seeds_for_power;
use crate::stats::{holm, paired_comparison, paired_differences, PairedComparison};

/// One paired comparison of a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The group compared.
    pub label: String,
    /// The group it is compared against.
    pub against: String,
    /// What is compared ("mean accuracy over the gaussian noise levels", ...).
    pub measure: String,
    /// Whether the measure is the pre-declared primary one.
    pub primary: bool,
    /// The seeds both groups have.
    pub seeds: Vec<u64>,
    /// The differences, in `seeds` order.
    pub differences: Vec<f64>,
    /// The test of the differences.
    pub test: PairedComparison,
    /// Its p corrected by Holm's method over the family.
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub p_holm: f64,
    /// The comparisons in its family.
    pub family: usize,
}

impl Comparison {
    /// "higher", "lower" or "no clear difference", by the corrected p.
    pub fn words(&self) -> &'static str {
        if self.p_holm < ALPHA && self.test.mean > 0.0 {
            "higher"
        } else if self.p_holm < ALPHA && self.test.mean < 0.0 {
            "lower"
        } else {
            "no clear difference"
        }
    }

    /// "+0.012 [-0.004, 0.028], p = 0.25 (Holm 1.00), d = 0.8 over 6 seeds: no clear
    /// difference; 15 seeds would detect it with 80% power".
    pub fn describe(&self) -> String {
        let t = &self.test;
        let mut text = format!(
            "{:+.3} [{:.3}, {:.3}], p = {} (Holm {}), effect {:.2} SD, {} paired seeds: {}",
            t.mean,
            t.interval.0,
            t.interval.1,
            p_text(t.p),
            p_text(self.p_holm),
            t.effect,
            t.n,
            self.words()
        );
        if self.words() == "no clear difference" {
            if t.p_floor * self.family as f64 >= ALPHA {
                text += &format!(
                    " (with {} seeds the smallest possible p is {}, {} after correcting over {} \
                     comparisons: no difference could be declared)",
                    t.n,
                    p_text(t.p_floor),
                    p_text((t.p_floor * self.family as f64).min(1.0)),
                    self.family
                );
            } else if let Some(n) = t.seeds_for_power {
                text += &format!(
                    "; {n} seeds would detect a difference this large with 80% power and let the \
                     corrected test call it"
                );
            }
        }
        text
    }
}

/// A p-value as text: three decimals, or "< 0.001".
pub fn p_text(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A group as the family sees it.
pub struct Member<'a> {
    /// Its label.
    pub label: &'a str,
    /// Its condition.
    pub condition: Condition,
    /// Its strength.
    pub strength: f64,
}

/// The pairs (group, reference) of the declared comparisons, as indices into `members`.
pub fn pairs(members: &[Member]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let none = members.iter().position(|m| m.condition == Condition::None);
    if let Some(n) = none {
        out.extend((0..members.len()).filter(|&g| g != n).map(|g| (g, n)));
    }
    for (g, m) in members.iter().enumerate() {
        if m.condition != Condition::NeuralModel {
            continue;
        }
        for (c, control) in members.iter().enumerate() {
            let same_strength = control.strength == m.strength;
            let is_control = match control.condition {
                Condition::Shuffle | Condition::PixelThresholded | Condition::PixelCosine => {
                    same_strength
                }
                Condition::Blur => true,
                _ => false,
            };
            if is_control {
                out.push((g, c));
            }
        }
    }
    out
}

/// The family of comparisons of one measure: `values[g]` holds group g's (seed, value) pairs.
pub fn family(
    members: &[Member],
    values: &[Vec<(u64, f64)>],
    measure: &str,
    primary: bool,
) -> Vec<Comparison> {
    let mut rows: Vec<Comparison> = pairs(members)
        .into_iter()
        .filter_map(|(g, r)| {
            let both: Vec<(u64, f64)> = values[g]
                .iter()
                .filter(|(s, _)| values[r].iter().any(|(t, _)| t == s))
                .copied()
                .collect();
            let differences = paired_differences(&both, &values[r]);
            if differences.is_empty() {
                return None;
            }
            Some(Comparison {
                label: members[g].label.to_string(),
                against: members[r].label.to_string(),
                measure: measure.to_string(),
                primary,
                seeds: both.iter().map(|(s, _)| *s).collect(),
                test: paired_comparison(&differences, 0),
                differences,
                p_holm: f64::NAN,
                family: 0,
            })
        })
        .collect();
    let corrected = holm(&rows.iter().map(|c| c.test.p).collect::<Vec<_>>());
    let size = rows.len();
    for (row, p) in rows.iter_mut().zip(corrected) {
        row.p_holm = p;
        row.family = size;
        // Seeds to settle a difference the corrected test did not call: enough for a paired
        // t-test's 80% power at the observed effect, and enough for the exact sign-flip test to
        // reach p < 0.05 at all after Holm's factor (2 / 2^n * size < 0.05).
        let t = &row.test;
        row.test.seeds_for_power = (p >= ALPHA && t.effect.is_finite() && t.effect != 0.0)
            .then(|| seeds_for_power(t.effect.abs(), ALPHA, POWER, 10_000))
            .flatten()
            .map(|n| n.max(seeds_to_reach(size)));
    }
    rows
}

/// The fewest seeds with which an exact sign-flip test, its p multiplied by `family`, can be
/// below 0.05.
pub fn seeds_to_reach(family: usize) -> usize {
    (1..64)
        .find(|&n| 2.0 / 2f64.powi(n as i32) * (family.max(1) as f64) < ALPHA)
        .unwrap_or(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(label: &'static str, condition: Condition, strength: f64) -> Member<'static> {
        Member {
            label,
            condition,
            strength,
        }
    }

    #[test]
    fn the_declared_pairs_are_each_against_none_and_neural_model_against_each_control() {
        let m = [
            member("None", Condition::None, 0.0),
            member("Neural (model)", Condition::NeuralModel, 20.0),
            member("Shuffle", Condition::Shuffle, 20.0),
            member("Shuffle a 5", Condition::Shuffle, 5.0),
            member("Pixel (thresholded)", Condition::PixelThresholded, 20.0),
            member("Blur", Condition::Blur, 0.0),
            member("Neural (data)", Condition::NeuralData, 20.0),
        ];
        let labels: Vec<(&str, &str)> = pairs(&m)
            .into_iter()
            .map(|(g, r)| (m[g].label, m[r].label))
            .collect();
        assert_eq!(
            labels,
            [
                ("Neural (model)", "None"),
                ("Shuffle", "None"),
                ("Shuffle a 5", "None"),
                ("Pixel (thresholded)", "None"),
                ("Blur", "None"),
                ("Neural (data)", "None"),
                ("Neural (model)", "Shuffle"),
                ("Neural (model)", "Pixel (thresholded)"),
                ("Neural (model)", "Blur"),
            ]
        );
    }

    #[test]
    fn the_seeds_an_exact_test_needs_grow_with_the_family() {
        // 2/2^5 = 0.0625; 2/2^6 = 0.031 (one comparison); 2/2^9 * 10 = 0.039 (ten).
        assert_eq!(seeds_to_reach(1), 6);
        assert_eq!(seeds_to_reach(10), 9);
        assert_eq!(seeds_to_reach(8), 9);
    }

    #[test]
    fn a_family_pairs_by_seed_and_corrects_by_holm() {
        let m = [
            member("None", Condition::None, 0.0),
            member("A", Condition::NeuralModel, 20.0),
            member("B", Condition::Shuffle, 20.0),
        ];
        // A beats None on each of 6 seeds (exact p = 2/64), B is mixed; seed 9 lacks None.
        let none: Vec<(u64, f64)> = (0..6).map(|s| (s, 0.5)).collect();
        let a: Vec<(u64, f64)> = (0..6)
            .map(|s| (s, 0.6 + s as f64 * 0.01))
            .chain([(9, 0.9)])
            .collect();
        let b: Vec<(u64, f64)> = (0..6)
            .map(|s| (s, if s % 2 == 0 { 0.55 } else { 0.45 }))
            .collect();
        let rows = family(&m, &[none, a, b], "clean accuracy", false);
        assert_eq!(rows.len(), 3);
        let a_none = &rows[0];
        assert_eq!(
            (a_none.label.as_str(), a_none.against.as_str()),
            ("A", "None")
        );
        assert_eq!(a_none.seeds, vec![0, 1, 2, 3, 4, 5]);
        assert!((a_none.test.p - 2.0 / 64.0).abs() < 1e-12);
        // Holm over 3: the smallest p times 3.
        let smallest = rows.iter().map(|r| r.test.p).fold(1.0, f64::min);
        assert!((a_none.p_holm - (3.0 * smallest).min(1.0)).abs() < 1e-12);
        assert_eq!(a_none.words(), "no clear difference");
        assert_eq!(rows[1].words(), "no clear difference");
    }
}
