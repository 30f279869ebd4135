//! Results stored in a run folder's `results/`, read back (noise curves, attack results, budget
//! curves), and the robustness score that combines the attacks. A missing file is no result; a
//! file that cannot be read or parsed is an error naming it, never skipped in silence.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::eval::attacks::Norm;
use crate::eval::minimal::{median, AttackResult, BudgetCurve};
use crate::eval::noise::{NoiseCurve, NoiseKind};
use crate::runs::run_dir::RunDir;

/// The result files of `dir` whose names start with `prefix`, sorted.
fn result_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let folder = RunDir(dir).results();
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(folder, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// One stored result.
fn read_result<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(path.display(), format!("not a stored result: {e}")))
}

/// The results of `dir` whose file names start with `prefix`: those read, and the errors of
/// those that could not be.
fn stored<T: DeserializeOwned>(dir: &Path, prefix: &str) -> (Vec<T>, Vec<Error>) {
    let (mut read, mut errors) = (Vec::new(), Vec::new());
    match result_files(dir, prefix) {
        Ok(paths) => {
            for p in paths {
                match read_result(&p) {
                    Ok(v) => read.push(v),
                    Err(e) => errors.push(e),
                }
            }
        }
        Err(e) => errors.push(e),
    }
    (read, errors)
}

/// All of `(values, errors)`, or its first error.
fn strict<T>((values, mut errors): (Vec<T>, Vec<Error>)) -> Result<Vec<T>> {
    match errors.is_empty() {
        true => Ok(values),
        false => Err(errors.remove(0)),
    }
}

/// The stored noise curve of a run, if any.
pub fn stored_curve(dir: &Path, kind: NoiseKind) -> Result<Option<NoiseCurve>> {
    let path = RunDir(dir).result("noise", kind.name());
    match path.is_file() {
        true => read_result(&path).map(Some),
        false => Ok(None),
    }
}

/// The stored attack results of a run, by attack and norm.
pub fn stored_attacks(dir: &Path) -> Result<Vec<AttackResult>> {
    strict(stored(dir, "attack_"))
}

/// The stored budget curves (Fig. 5) of a run.
pub fn stored_budgets(dir: &Path) -> Result<Vec<BudgetCurve>> {
    strict(stored(dir, "budget_"))
}

/// Everything a run's `results/` holds, read at once (the window reads it on its
/// once-a-second refresh, never in a frame), with the files that could not be read.
#[derive(Debug, Default)]
pub struct RunResults {
    /// Noise curves, one per kind stored.
    pub curves: Vec<NoiseCurve>,
    /// Attack results.
    pub attacks: Vec<AttackResult>,
    /// Budget curves.
    pub budgets: Vec<BudgetCurve>,
    /// What could not be read: each message names the file.
    pub unreadable: Vec<String>,
}

impl RunResults {
    /// Reads the results of the run in `dir`.
    pub fn read(dir: &Path) -> RunResults {
        let (curves, e1) = stored(dir, "noise_");
        let (attacks, e2) = stored(dir, "attack_");
        let (budgets, e3) = stored(dir, "budget_");
        let unreadable = e1
            .iter()
            .chain(&e2)
            .chain(&e3)
            .map(|e| e.to_string())
            .collect();
        RunResults {
            curves,
            attacks,
            budgets,
            unreadable,
        }
    }

    /// The noise curve of `kind`, if stored.
    pub fn curve(&self, kind: NoiseKind) -> Option<&NoiseCurve> {
        self.curves.iter().find(|c| c.kind == kind)
    }
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

/// The robustness score in `norm` (docs/method.md section 8): the median over samples of the smallest distance
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

    #[test]
    fn a_broken_result_file_is_named_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(stored_attacks(dir.path()).unwrap().is_empty());
        assert!(stored_curve(dir.path(), NoiseKind::Gaussian)
            .unwrap()
            .is_none());
        let results = dir.path().join("results");
        std::fs::create_dir_all(&results).unwrap();
        let good = result(AttackName::Pgd, Norm::Linf, vec![Some(0.3)]);
        let text = serde_json::to_string(&good).unwrap();
        std::fs::write(results.join("attack_pgd_linf.json"), text).unwrap();
        assert_eq!(stored_attacks(dir.path()).unwrap().len(), 1);
        std::fs::write(results.join("attack_fmn_l2.json"), "{\"run\": ").unwrap();
        let err = stored_attacks(dir.path()).unwrap_err().to_string();
        assert!(err.contains("attack_fmn_l2.json"), "{err}");
        let all = RunResults::read(dir.path());
        assert_eq!(all.attacks.len(), 1);
        assert_eq!(all.unreadable.len(), 1);
        assert!(all.unreadable[0].contains("attack_fmn_l2.json"));
    }
}
