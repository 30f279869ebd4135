//! Benchmark of the predictive model (docs/method.md section 6): a training epoch at the sample
//! scans' size and at the paper's (5000 images, 8000 neurons), and predicting
//! 5000 images; the same model in PyTorch (`scripts/predictor_torch.py`) timed
//! in the same run when python3 with torch is present. An epoch is timed as a
//! number of steps times the steps per epoch (a full paper-size epoch takes
//! minutes on a 2-core CPU). Prints figures; never fails.
//!
//! Run: `cargo bench --bench predictor`

use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use neureg::nn::models::predictor::{ModelShape, Predictor, PredictorConfig};
use neureg::nn::optim::adam::Adam;
use neureg::nn::seeded_init::seeded_var_builder;
use neureg::runs::predictor::FitConfig;
use neureg::train::predictor::training_loss;

const H: usize = 36;
const W: usize = 64;

/// Seconds per training step and seconds to predict `images` images, in neureg.
fn neureg(
    images: usize,
    neurons: usize,
    batch: usize,
    steps: usize,
) -> candle_core::Result<(f64, f64)> {
    let dev = Device::Cpu;
    let shape = ModelShape {
        neurons,
        height: H,
        width: W,
        behavior: true,
        pupil: true,
    };
    let varmap = VarMap::new();
    let model = Predictor::new(
        &PredictorConfig::default(),
        shape,
        seeded_var_builder(&varmap, 0, &dev),
    )
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let vars = neureg::nn::named_vars(&varmap);
    let mut adam = Adam::new(vars, 0.01).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let x = Tensor::randn(0f32, 1., (batch, 1, H, W), &dev)?;
    let r = (Tensor::rand(0f32, 1., (batch, neurons), &dev)? * 2.0)?;
    let b = Tensor::randn(0f32, 1., (batch, 3), &dev)?.abs()?;
    let p = Tensor::randn(0f32, 1., (batch, 2), &dev)?;
    let msg = |e: neureg::Error| candle_core::Error::Msg(e.to_string());
    let mut step = || -> candle_core::Result<()> {
        let pred = model.forward(&x, Some(&b), Some(&p), true).map_err(msg)?;
        let loss = training_loss(&model, &pred, &r, &FitConfig::default()).map_err(msg)?;
        adam.backward_step(&loss).map_err(msg)
    };
    step()?;
    let start = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    let per_step = start.elapsed().as_secs_f64() / steps as f64;
    let xs = Tensor::randn(0f32, 1., (images, 1, H, W), &dev)?;
    let start = Instant::now();
    for k in (0..images).step_by(128) {
        let n = 128.min(images - k);
        let beh = Tensor::ones((n, 3), DType::F32, &dev)?;
        let pup = Tensor::zeros((n, 2), DType::F32, &dev)?;
        model
            .forward(&xs.narrow(0, k, n)?, Some(&beh), Some(&pup), false)
            .map_err(msg)?;
    }
    Ok((per_step, start.elapsed().as_secs_f64()))
}

/// The same in PyTorch, if present.
fn torch(images: usize, neurons: usize, batch: usize, steps: usize) -> Option<(f64, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/predictor_torch.py");
    let out = Command::new("python3")
        .args([script, "--bench"])
        .args([images, neurons, batch, steps].map(|v| v.to_string()))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}

fn main() {
    // (label, training images per epoch, neurons, batch, steps timed)
    let cases = [
        (
            "sample scan (428 train images, 268 neurons, batch 8)",
            428usize,
            268usize,
            8usize,
            10usize,
        ),
        (
            "paper size (4500 train images, 8000 neurons, batch 64)",
            4500,
            8000,
            64,
            3,
        ),
    ];
    for (label, train, neurons, batch, steps) in cases {
        let epoch_steps = train.div_ceil(batch) as f64;
        let ours = match neureg(5000, neurons, batch, steps) {
            Ok(v) => v,
            Err(e) => {
                println!("{label}: neureg failed: {e}");
                continue;
            }
        };
        println!("{label}");
        println!(
            "  neureg : epoch {:8.2} s ({:.3} s per step), predicting 5000 images {:6.2} s",
            ours.0 * epoch_steps,
            ours.0,
            ours.1
        );
        match torch(5000, neurons, batch, steps) {
            Some(t) => println!(
                "  PyTorch: epoch {:8.2} s ({:.3} s per step), predicting 5000 images {:6.2} s; relative speed: epoch {:.2}, prediction {:.2}",
                t.0 * epoch_steps,
                t.0,
                t.1,
                t.0 / ours.0,
                t.1 / ours.1
            ),
            None => println!("  PyTorch: not available (pip install torch)"),
        }
    }
}
