//! Benchmark of the attacks (SPEC 8): gradient steps per second on ResNet18
//! (evaluation mode, the cross-entropy's gradient with respect to a batch of
//! 1 x 32 x 32 images, the step every gradient attack repeats), against the
//! same network and step in PyTorch (`scripts/resnet_torch.py --attack`) in the
//! same run when python3 with torch is present. Prints figures; never fails.
//!
//! Run: `cargo bench --bench attacks`

use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use neureg::eval::attacks::{input_gradient, Model};
use neureg::nn::resnet::{Depth, ResNet, ResNetConfig};
use neureg::nn::seeded_init::seeded_var_builder;

/// The network in evaluation mode as an attack sees it.
struct Net(ResNet);

impl Model for Net {
    fn logits(&self, images: &Tensor) -> neureg::Result<Tensor> {
        Ok(self.0.forward(images, false, true)?.logits.expect("logits"))
    }
}

/// Gradient steps per second in neureg.
fn neureg(width: f64, batch: usize, steps: usize) -> neureg::Result<f64> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let config = ResNetConfig {
        depth: Depth::Resnet18,
        width,
        classes: 10,
        taps: vec![17],
    };
    ResNet::new(&config, seeded_var_builder(&varmap, 0, &dev))?;
    // Frozen, as `load_classifier` gives it to the attacks: gradients reach the images only.
    let tensors = varmap
        .data()
        .lock()
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
                .collect()
        })
        .unwrap_or_default();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
    let net = Net(ResNet::new(&config, vb)?);
    let x = Tensor::rand(0f32, 1., (batch, 1, 32, 32), &dev)?;
    let y = Tensor::zeros(batch, DType::U32, &dev)?;
    input_gradient(&net, &x, &y)?;
    let start = Instant::now();
    for _ in 0..steps {
        input_gradient(&net, &x, &y)?;
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

/// The same in PyTorch, if present.
fn torch(width: f64, batch: usize, steps: usize) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/resnet_torch.py");
    let out = Command::new("python3")
        .args([script, "--attack"])
        .args([width.to_string(), batch.to_string(), steps.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    for (width, batch, steps) in [(1.0, 64, 5), (0.25, 64, 20)] {
        let label =
            format!("ResNet18 width {width}, batch {batch}: attack gradient steps per second");
        match (neureg(width, batch, steps), torch(width, batch, steps)) {
            (Ok(ours), Some(theirs)) => println!(
                "{label}: neureg {ours:.2}, PyTorch {theirs:.2}, PyTorch / neureg {:.2}",
                theirs / ours
            ),
            (Ok(ours), None) => println!("{label}: neureg {ours:.2} (PyTorch not found)"),
            (Err(e), _) => println!("{label}: neureg failed: {e}"),
        }
    }
}
