//! Minimal adversarial perturbations of one run (docs/method.md section 8, Fig. 5), with the first examples found
//! handed out as they come: the window's gallery, the command line's PNGs.

use std::path::PathBuf;

use candle_core::{Device, Tensor};

use crate::data::classification_read::load_classification_set;
use crate::error::Result;
use crate::eval::minimal::{attack_run, AttackConfig, AttackResult};
use crate::progress::Progress;
use crate::runs::RunConfig;

/// Which run to attack, how, and how many examples to hand out.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackRequest {
    /// The run folder.
    pub run: PathBuf,
    /// The attack.
    pub config: AttackConfig,
    /// Examples to hand out (the first broken samples, in sample order).
    pub examples: usize,
}

/// One adversarial example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Its position in the attacked sample set.
    pub sample: usize,
    /// Height and width.
    pub shape: (usize, usize),
    /// Original pixels on [0, 1].
    pub original: Vec<f32>,
    /// Adversarial pixels on [0, 1].
    pub adversarial: Vec<f32>,
    /// True class and the class the model gives the adversarial, by name.
    pub classes: (String, String),
    /// Measured distance.
    pub distance: f32,
}

/// What happens as the attack goes.
pub enum AttackEvent {
    /// The attack begins; the run's [`RunConfig::notice`], if any, says why its figures are not
    /// comparable.
    Started {
        /// The notice.
        notice: Option<String>,
    },
    /// One more example.
    Example(Example),
}

/// Attacks `request.run` (its result stored in the run's `results/`), handing out examples.
pub fn attack(
    request: &AttackRequest,
    device: &Device,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(AttackEvent),
) -> Result<AttackResult> {
    let config = RunConfig::load(&request.run)?;
    on_event(AttackEvent::Started {
        notice: config.notice(),
    });
    // Class names are decoration: a set whose names cannot be read shows numbers.
    let names = load_classification_set(&config.data)
        .map(|set| set.classes)
        .unwrap_or_default();
    let name = |k: u32| names.get(k as usize).cloned().unwrap_or(k.to_string());
    let mut handed = 0;
    attack_run(
        &request.run,
        &request.config,
        device,
        progress,
        &mut |batch| {
            let (x, found) = (batch.images, batch.found);
            let (h, w) = (x.dim(2).unwrap_or(0), x.dim(3).unwrap_or(0));
            for (i, &d) in found.distance.iter().enumerate() {
                if handed >= request.examples || !d.is_finite() || d == 0.0 {
                    continue;
                }
                if let (Ok(original), Ok(adversarial)) =
                    (pixels(x, i), pixels(&found.adversarial, i))
                {
                    handed += 1;
                    on_event(AttackEvent::Example(Example {
                        sample: batch.first + i,
                        shape: (h, w),
                        original,
                        adversarial,
                        classes: (name(batch.labels[i]), name(found.predicted[i])),
                        distance: d,
                    }));
                }
            }
        },
    )
}

/// Image `i` of a batch (B, 1, H, W), flattened.
fn pixels(batch: &Tensor, i: usize) -> candle_core::Result<Vec<f32>> {
    batch.get(i)?.flatten_all()?.to_vec1::<f32>()
}
