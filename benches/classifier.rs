//! Benchmark of the regularised classifier (docs/method.md section 7): training images per
//! second for ResNet18 at batch 64 on 1 x 32 x 32 images, without and with
//! the similarity loss (a second batch of 64 scan-sized 36 x 64 images, five
//! taps), and inference; the same network and step in PyTorch
//! (`scripts/resnet_torch.py`) in the same run when python3 with torch is
//! present, the two taking turns for three rounds and each showing its best. Relative speed =
//! neureg's rate / PyTorch's (1.0 = as fast). Prints figures; never fails.
//!
//! Run: `cargo bench --bench classifier`

use std::process::Command;

use candle_core::Device;
use neureg::train::throughput;

const BATCH: usize = 64;

/// Images per second in neureg: (train plain, train regularised, inference).
fn neureg(width: f64, steps: usize) -> neureg::Result<(f64, f64, f64)> {
    let r = throughput::measure(&Device::Cpu, width, BATCH, steps)?;
    Ok((r.train, r.train_regularised, r.inference))
}

/// The same in PyTorch, if present.
fn torch(width: f64, steps: usize) -> Option<(f64, f64, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/resnet_torch.py");
    let out = Command::new("python3")
        .args([
            script,
            &width.to_string(),
            &BATCH.to_string(),
            &steps.to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    (v.len() == 3).then(|| (v[0], v[1], v[2]))
}

/// Rounds per width: neureg and PyTorch take turns, and each line shows each one's best round,
/// so that a slow spell on a shared machine does not decide the comparison.
const ROUNDS: usize = 3;

/// The larger of each of the three rates.
fn best(a: Option<[f64; 3]>, b: [f64; 3]) -> [f64; 3] {
    let a = a.unwrap_or([0.0; 3]);
    std::array::from_fn(|k| a[k].max(b[k]))
}

fn main() {
    for (width, steps) in [(1.0, 3), (0.25, 10)] {
        let label = format!("ResNet18 width {width}, batch {BATCH}, 1 x 32 x 32");
        let (mut ours, mut reference) = (None, None);
        for _ in 0..ROUNDS {
            match neureg(width, steps) {
                Ok(v) => ours = Some(best(ours, [v.0, v.1, v.2])),
                Err(e) => {
                    println!("{label}: neureg failed: {e}");
                    break;
                }
            }
            if let Some(r) = torch(width, steps) {
                reference = Some(best(reference, [r.0, r.1, r.2]));
            }
        }
        let Some(ours) = ours else { continue };
        println!("{label} (images per second, best of {ROUNDS} alternating rounds)");
        let names = ["train", "train + similarity loss", "inference"];
        for (k, name) in names.iter().enumerate() {
            match reference {
                Some(r) => println!(
                    "  {name:<24} neureg {:>8.1}   PyTorch {:>8.1}   relative {:.2}",
                    ours[k],
                    r[k],
                    ours[k] / r[k]
                ),
                None => println!("  {name:<24} neureg {:>8.1}   (PyTorch not found)", ours[k]),
            }
        }
    }
}
