//! The per-step scalars of training (task loss, similarity loss, correct predictions), kept on
//! the device and read back in one transfer when they are needed: at a metrics line, a pause
//! and an epoch's end. Reading each step's loss at once made a GPU wait for the host every step.

use candle_core::{DType, Tensor};

use crate::error::Result;

/// One step's scalars, read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepValues {
    /// The step's number.
    pub step: u64,
    /// Cross-entropy of the classification batch.
    pub task: f64,
    /// Similarity loss (Eq. 8; 0 without a target).
    pub similarity: f64,
    /// Correctly classified images of the batch.
    pub correct: u64,
}

/// Steps whose scalars are still on the device.
#[derive(Default)]
pub(crate) struct StepScalars {
    steps: Vec<u64>,
    values: Vec<Tensor>,
}

impl StepScalars {
    /// Keeps step `step`'s losses (scalars) and the number of rows of `logits` whose maximum is
    /// at the label, without reading them.
    pub fn push(
        &mut self,
        step: u64,
        task: &Tensor,
        similarity: Option<&Tensor>,
        logits: &Tensor,
        labels: &Tensor,
    ) -> Result<()> {
        let correct = correct_count(logits, labels)?;
        let similarity = match similarity {
            Some(s) => s.detach(),
            None => task.zeros_like()?,
        };
        let row = Tensor::stack(&[task.detach(), similarity, correct], 0)?;
        self.steps.push(step);
        self.values.push(row.to_dtype(DType::F32)?);
        Ok(())
    }

    /// Every kept step's values, in order, read in one transfer; the list is emptied.
    pub fn drain(&mut self) -> Result<Vec<StepValues>> {
        if self.values.is_empty() {
            return Ok(Vec::new());
        }
        let rows = Tensor::stack(&self.values, 0)?.to_vec2::<f32>()?;
        self.values.clear();
        Ok(self
            .steps
            .drain(..)
            .zip(rows)
            .map(|(step, r)| StepValues {
                step,
                task: r[0] as f64,
                similarity: r[1] as f64,
                correct: r[2] as u64,
            })
            .collect())
    }
}

/// How many rows of `logits` have their maximum at the label, as a scalar on the device.
pub(crate) fn correct_count(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits
        .argmax(1)?
        .eq(labels)?
        .to_dtype(DType::F32)?
        .sum_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn values_come_back_in_order_once() -> Result<()> {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 2.], [3., 1.], [0., 1.]], &dev)?;
        let labels = Tensor::new(&[1u32, 1, 1], &dev)?;
        let mut kept = StepScalars::default();
        kept.push(7, &Tensor::new(0.5f32, &dev)?, None, &logits, &labels)?;
        let sim = Tensor::new(0.25f32, &dev)?;
        kept.push(
            8,
            &Tensor::new(f32::NAN, &dev)?,
            Some(&sim),
            &logits,
            &labels,
        )?;
        let values = kept.drain()?;
        assert_eq!(values.len(), 2);
        assert_eq!(
            (values[0].step, values[0].task, values[0].correct),
            (7, 0.5, 2)
        );
        assert_eq!(values[0].similarity, 0.0);
        assert!(values[1].task.is_nan() && values[1].similarity == 0.25);
        assert!(kept.drain()?.is_empty());
        Ok(())
    }
}
