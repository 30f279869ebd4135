//! What a training loop asks of its optimiser, so that it holds one whichever the run chose.
//! candle-nn's `Optimizer` trait has no way to save and restore the optimiser's state (momentum
//! buffers, Adam's moments and step count) that a resumable checkpoint keeps, hence this one.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::Tensor;

use crate::error::Result;
use crate::nn::optim::adam::Adam;
use crate::nn::optim::sgd::Sgd;

/// A first-order optimiser with checkpointable state.
pub trait Optimiser {
    /// Sets the learning rate of the next steps.
    fn set_lr(&mut self, lr: f64);
    /// One step from the gradients.
    fn apply(&mut self, grads: &GradStore) -> Result<()>;
    /// The state a checkpoint keeps, named.
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores [`Optimiser::state`] read back from a checkpoint taken after `step` steps.
    fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64);
}

impl Optimiser for Sgd {
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn apply(&mut self, grads: &GradStore) -> Result<()> {
        Sgd::apply(self, grads)
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        Sgd::state(self)
    }

    fn load_state(&mut self, tensors: &HashMap<String, Tensor>, _step: u64) {
        Sgd::load_state(self, tensors)
    }
}

impl Optimiser for Adam {
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn apply(&mut self, grads: &GradStore) -> Result<()> {
        Adam::apply(self, grads)
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        Adam::state(self)
    }

    fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) {
        Adam::load_state(self, tensors, step)
    }
}
