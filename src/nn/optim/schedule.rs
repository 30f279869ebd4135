//! Learning-rate schedules of the classifier (docs/method.md section 7).

use serde::{Deserialize, Serialize};

/// How the learning rate changes over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The paper's: times 0.3 every 4 epochs, back to the start after epoch 20.
    Paper,
    /// Cosine annealing from the start to 0 over the run.
    Cosine,
    /// The same rate throughout.
    Constant,
}

impl Schedule {
    /// The rate of epoch `epoch` (0-based) of `epochs`, starting from `lr`.
    pub fn lr(self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Paper => lr * 0.3f64.powi(((epoch % 20) / 4) as i32),
            Schedule::Cosine => {
                0.5 * lr
                    * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos())
            }
            Schedule::Constant => lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_schedule() {
        let lr = |e| Schedule::Paper.lr(0.1, e, 40);
        assert_eq!(lr(0), 0.1);
        assert_eq!(lr(3), 0.1);
        assert!((lr(4) - 0.03).abs() < 1e-12);
        assert!((lr(19) - 0.1 * 0.3f64.powi(4)).abs() < 1e-12);
        assert_eq!(lr(20), 0.1);
        assert!((lr(24) - 0.03).abs() < 1e-12);
    }

    #[test]
    fn cosine_starts_at_the_rate_and_halves_midway() {
        assert!((Schedule::Cosine.lr(0.2, 0, 10) - 0.2).abs() < 1e-12);
        assert!((Schedule::Cosine.lr(0.2, 5, 10) - 0.1).abs() < 1e-12);
    }
}
