//! Robustness evaluation (docs/method.md section 8): accuracy under noise and minimal adversarial perturbations;
//! results stored in the run folder.

pub mod attacks;
pub mod comparisons;
pub mod minimal;
pub mod noise;
pub mod results;
