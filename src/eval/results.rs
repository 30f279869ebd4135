//! Results stored in a run folder's `results/`, read back (noise curves, attack
//! results, budget curves; unreadable files are skipped), and the robustness
//! score that combines the attacks.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::eval::attacks::Norm;
use crate::eval::minimal::{median, AttackResult, BudgetCurve};
use crate::eval::noise::{NoiseCurve, NoiseKind};

/// The results of `dir` whose file names start with `prefix`.
fn stored<T: DeserializeOwned>(dir: &Path, prefix: &str) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir.join("results")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok())
        .collect()
}

/// The stored noise curve of a run, if any.
pub fn stored_curve(dir: &Path, kind: NoiseKind) -> Option<NoiseCurve> {
    let path = dir
        .join("results")
        .join(format!("noise_{}.json", kind.name()));
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The stored attack results of a run, by attack and norm.
pub fn stored_attacks(dir: &Path) -> Vec<AttackResult> {
    stored(dir, "attack_")
}

/// The stored budget curves (Fig. 5) of a run.
pub fn stored_budgets(dir: &Path) -> Vec<BudgetCurve> {
    stored(dir, "budget_")
}

/// Per sample, the smallest distance in `norm` that any attack found (infinite: unbroken).
/// Attacks run on different numbers of samples are compared on the samples they share (all
/// take the first test images). None: no attack in that norm.
pub fn best_distances(results: &[AttackResult], norm: Norm) -> Option<Vec<f32>> {
    let of_norm: Vec<&AttackResult> = results.iter().filter(|r| r.config.norm == norm).collect();
    let n = of_norm.iter().map(|r| r.distances.len()).min()?;
    Some(
        (0..n)
            .map(|i| {
                of_norm
                    .iter()
                    .filter_map(|r| r.distances[i])
                    .fold(f32::INFINITY, f32::min)
            })
            .collect(),
    )
}

/// The robustness score in `norm` (SPEC 8): the median over samples of the smallest distance
/// any attack found, unbroken samples infinite. None: infinite, or no attack in that norm.
pub fn robustness_score(results: &[AttackResult], norm: Norm) -> Option<f32> {
    median(&best_distances(results, norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::minimal::{AttackConfig, AttackName};

    fn result(attack: AttackName, norm: Norm, distances: Vec<Option<f32>>) -> AttackResult {
        AttackResult {
            run: "r".into(),
            config: AttackConfig {
                attack,
                norm,
                samples: distances.len(),
                batch: 1,
                rounds: 1,
                steps: 0,
                seed: 0,
            },
            labels: vec![0; distances.len()],
            median: None,
            distances,
        }
    }

    #[test]
    fn the_score_takes_the_best_attack_per_sample() {
        let results = [
            result(
                AttackName::Pgd,
                Norm::Linf,
                vec![Some(0.3), None, Some(0.1)],
            ),
            result(
                AttackName::Fmn,
                Norm::Linf,
                vec![Some(0.2), Some(0.5), None, Some(0.9)],
            ),
            result(AttackName::Ddn, Norm::L2, vec![Some(9.0)]),
        ];
        // Per sample (first three): 0.2, 0.5, 0.1; median 0.2.
        assert_eq!(robustness_score(&results, Norm::Linf), Some(0.2));
        assert_eq!(robustness_score(&results, Norm::L2), Some(9.0));
        assert_eq!(robustness_score(&results, Norm::L0), None);
        let unbroken = [result(
            AttackName::Pgd,
            Norm::Linf,
            vec![None, None, Some(0.1)],
        )];
        assert_eq!(robustness_score(&unbroken, Norm::Linf), None);
    }
}
