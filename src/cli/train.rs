//! `neureg train`: regularised classifier runs, one or a sweep over seeds and strengths.

use std::path::PathBuf;

use anyhow::Context as _;

use super::progress_bar::Bar;
use super::Context;
use crate::runs::store::run_dir;
use crate::runs::{MetricEvent, RunConfig};
use crate::train::classifier::train_run;

/// `neureg train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Run folder (one run) or the folder to put the runs in (several seeds or strengths).
    /// Default: the workspace's runs/<condition>-a<strength>-seed<seed>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take the configuration from this JSON file (a run's config.json) instead of the flags.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The paper's scale: width 1, 40 epochs, the paper's schedule, every image.
    #[arg(long)]
    paper: bool,
    /// One run per seed (a sweep; overrides --seed).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// One run per strength (a sweep; overrides --strength).
    #[arg(long, value_delimiter = ',')]
    strengths: Vec<f64>,
    /// The run's settings.
    #[command(flatten)]
    run: RunConfig,
}

/// Trains each run of the sweep in turn, printing its epochs and how it ended.
pub fn train(a: TrainArgs, cx: &Context) -> anyhow::Result<()> {
    let mut base = match a.config {
        Some(path) => serde_json::from_str::<RunConfig>(
            &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
        )
        .with_context(|| format!("{}: not a run configuration", path.display()))?,
        None => a.run,
    };
    if a.paper {
        base = base.paper_scale();
    }
    let sweep = base
        .with_absolute_inputs(Some(&cx.workspace.root))
        .sweep(&a.seeds, &a.strengths);
    let root = a.out.clone().unwrap_or_else(|| cx.workspace.runs());
    for (k, config) in sweep.iter().enumerate() {
        let dir = match (&a.out, sweep.len()) {
            (Some(dir), 1) => dir.clone(),
            _ => run_dir(&root, config),
        };
        eprintln!("run {} of {}: {}", k + 1, sweep.len(), dir.display());
        if let Some(notice) = config.notice() {
            eprintln!("warning: {}: {notice}", dir.display());
        }
        let info = train_run(&dir, config, cx.device, &Bar::new())?;
        for e in &info.events {
            if let MetricEvent::Epoch {
                epoch,
                task_loss,
                train_accuracy,
                test_accuracy,
                ..
            } = e
            {
                println!(
                    "epoch {:>3}: task loss {task_loss:.4}, train accuracy {train_accuracy:.4}, test accuracy {test_accuracy:.4}",
                    epoch + 1
                );
            }
        }
        println!("{}: {:?}", dir.display(), info.status());
    }
    Ok(())
}
