//! `neureg speed`: how fast this machine trains and evaluates the regularised ResNet18.

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::runs::predictor::write_json;
use crate::train::throughput::measure;

/// `neureg speed`.
#[derive(Debug, Args)]
pub struct SpeedArgs {
    /// Channel multiplier of the ResNet18 (1 = the paper's).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    batch: Vec<usize>,
    /// Timed steps of each kind per batch size.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Also write the rates here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Prints training (with and without the similarity loss) and inference rates per batch size.
pub fn speed(a: SpeedArgs, cx: &Context) -> anyhow::Result<()> {
    if a.steps == 0 || a.batch.contains(&0) {
        anyhow::bail!("--steps and every --batch must be at least 1");
    }
    println!(
        "ResNet18 width {} on {:?}, images per second ({} steps each):",
        a.width, cx.device, a.steps
    );
    println!("  batch        train  train + similarity loss    inference");
    let mut all = Vec::new();
    for &batch in &a.batch {
        let r = measure(cx.device, a.width, batch, a.steps)?;
        println!(
            "  {batch:>5} {:>12.1} {:>24.1} {:>12.1}",
            r.train, r.train_regularised, r.inference
        );
        all.push(r);
    }
    if let Some(path) = &a.json {
        write_json(path, &all)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
