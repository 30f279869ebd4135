//! What the run store says of its runs at a glance: each run's last epoch and per-step series,
//! and the paper's Table 1 (per condition, the finished runs' test accuracy and final layer
//! weights), computed when the run list is re-read, never per frame.

use crate::runs::config::Condition;
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;
use crate::stats::MeanSem;

/// One step of a run: (step, task loss, similarity loss, gamma per tap).
pub type StepPoint = (f64, f64, f64, Vec<f64>);

impl RunInfo {
    /// The last epoch's (epoch, train accuracy, test accuracy).
    pub fn last_epoch(&self) -> Option<(usize, f64, f64)> {
        self.events.iter().rev().find_map(|e| match e {
            MetricEvent::Epoch {
                epoch,
                train_accuracy,
                test_accuracy,
                ..
            } => Some((*epoch, *train_accuracy, *test_accuracy)),
            _ => None,
        })
    }

    /// Every epoch's (epoch from 1, train accuracy, test accuracy).
    pub fn epochs(&self) -> Vec<(f64, f64, f64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MetricEvent::Epoch {
                    epoch,
                    train_accuracy,
                    test_accuracy,
                    ..
                } => Some((*epoch as f64 + 1.0, *train_accuracy, *test_accuracy)),
                _ => None,
            })
            .collect()
    }

    /// Every logged step.
    pub fn steps(&self) -> Vec<StepPoint> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MetricEvent::Step {
                    step,
                    task_loss,
                    sim_loss,
                    gamma,
                    ..
                } => Some((*step as f64, *task_loss, *sim_loss, gamma.clone())),
                _ => None,
            })
            .collect()
    }
}

/// One row of Table 1.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionRow {
    /// The condition.
    pub condition: Condition,
    /// Its finished runs.
    pub runs: usize,
    /// Their final test accuracy, mean and SEM over the runs.
    pub accuracy: MeanSem,
    /// Mean final gamma per tap (None for the unregularised condition).
    pub gamma: Option<Vec<f64>>,
}

/// Table 1 of the finished runs among `runs`, conditions in the paper's order.
pub fn condition_table(runs: &[RunInfo]) -> Vec<ConditionRow> {
    let finished: Vec<&RunInfo> = runs
        .iter()
        .filter(|r| r.status() == RunStatus::Finished)
        .collect();
    Condition::ALL
        .iter()
        .filter_map(|&c| {
            let of: Vec<&&RunInfo> = finished
                .iter()
                .filter(|r| r.config.condition == c)
                .collect();
            if of.is_empty() {
                return None;
            }
            let acc: Vec<f64> = of
                .iter()
                .filter_map(|r| r.last_epoch().map(|e| e.2))
                .collect();
            let gammas: Vec<Vec<f64>> = of
                .iter()
                .filter_map(|r| r.steps().last().map(|s| s.3.clone()))
                .collect();
            let gamma = match gammas.first() {
                Some(g0) if c != Condition::None => Some(
                    (0..g0.len())
                        .map(|l| {
                            let v: Vec<f64> =
                                gammas.iter().filter_map(|g| g.get(l).copied()).collect();
                            MeanSem::of(&v).mean
                        })
                        .collect(),
                ),
                _ => None,
            };
            Some(ConditionRow {
                condition: c,
                runs: of.len(),
                accuracy: MeanSem::of(&acc),
                gamma,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RunConfig;

    fn run(condition: Condition, seed: u64, test: f64, gamma: Vec<f64>, finished: bool) -> RunInfo {
        let config = RunConfig {
            condition,
            seed,
            epochs: 1,
            ..RunConfig::default()
        };
        let mut events = vec![
            MetricEvent::Step {
                step: 1,
                epoch: 0,
                lr: 0.1,
                task_loss: 1.0,
                sim_loss: 0.5,
                gamma,
            },
            MetricEvent::Epoch {
                epoch: 0,
                step: 1,
                task_loss: 1.0,
                train_accuracy: 0.5,
                test_accuracy: test,
            },
        ];
        if finished {
            events.push(MetricEvent::Finished {
                step: 1,
                test_accuracy: test,
            });
        }
        RunInfo {
            dir: format!("/runs/{}-{seed}", condition.label()).into(),
            config,
            events,
        }
    }

    #[test]
    fn table_1_averages_the_finished_runs_of_each_condition() {
        let runs = vec![
            run(Condition::None, 0, 0.8, vec![], true),
            run(Condition::NeuralModel, 0, 0.7, vec![0.2, 0.8], true),
            run(Condition::NeuralModel, 1, 0.9, vec![0.4, 0.6], true),
            run(Condition::NeuralModel, 2, 0.1, vec![1.0, 0.0], false),
        ];
        let table = condition_table(&runs);
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].condition, Condition::None);
        assert_eq!(table[0].gamma, None);
        let model = &table[1];
        assert_eq!(model.runs, 2, "the unfinished run is left out");
        assert!((model.accuracy.mean - 0.8).abs() < 1e-12);
        // Sample standard deviation 0.1414 over sqrt(2).
        assert!((model.accuracy.sem - 0.1).abs() < 1e-12);
        let g = model.gamma.as_ref().unwrap();
        assert!((g[0] - 0.3).abs() < 1e-12 && (g[1] - 0.7).abs() < 1e-12);
    }
}
