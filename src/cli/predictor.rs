//! `neureg fit-predictor`, `target` and `denoising`: the denoising model and the targets.

use std::path::PathBuf;

use super::progress_bar::Bar;
use super::Context;
use crate::atomic::write_atomic;
use crate::nn::models::predictor::PredictorConfig;
use crate::pipeline::denoising::denoising_comparison;
use crate::pipeline::predictors::ScanSource;
use crate::pipeline::target::{build_target, TargetImages, TargetRequest};
use crate::runs::predictor::FitConfig;
use crate::similarity::target::Weighting;
use crate::train::predictor::fit_predictor;

/// `neureg fit-predictor`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Scan folder or zip.
    scan: PathBuf,
    /// Predictor folder (meta.json, checkpoints, metrics.jsonl, quality.json).
    #[arg(long)]
    out: PathBuf,
    /// Architecture.
    #[command(flatten)]
    model: PredictorConfig,
    /// Fit settings.
    #[command(flatten)]
    fit: FitConfig,
}

/// `neureg target`.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Predictor folders (from fit-predictor).
    #[arg(long, required = true, num_args = 1..)]
    predictors: Vec<PathBuf>,
    /// A scan whose single-shown images to use, or a folder of PNG/JPEG images (resized to the
    /// predictors' input; ids in file-name order). Default: the single-shown images of the
    /// predictors' scans, which must agree.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Neuron weighting of Eq. 6.
    #[arg(long, value_enum, default_value_t = Weighting::SnrRho)]
    weighting: Weighting,
    /// Build the Neural (data) target instead: single-trial similarity of the same images.
    #[arg(long)]
    data: bool,
    /// Output .npy file (the sidecar is written beside it as .json).
    #[arg(long)]
    out: PathBuf,
}

/// `neureg denoising`.
#[derive(Debug, clap::Args)]
pub struct DenoisingArgs {
    /// Predictor folders (from fit-predictor).
    #[arg(long, required = true, num_args = 1..)]
    predictors: Vec<PathBuf>,
    /// Neuron weighting of Eq. 6.
    #[arg(long, value_enum, default_value_t = Weighting::SnrRho)]
    weighting: Weighting,
    /// Also write the scatters and correlations to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Fits, printing each epoch and the kept weights' quality.
pub fn fit(a: FitArgs, cx: &Context) -> anyhow::Result<()> {
    let scan = super::scans::load_scans(&[a.scan], cx)?.remove(0);
    let bar = Bar::new();
    let report = fit_predictor(&scan, &a.model, &a.fit, &a.out, cx.device, &bar, &mut |m| {
        bar.note(&format!(
            "epoch {:>3}: loss {:.4}, validation correlation {:.4}, lr {:.2e}",
            m.epoch, m.train_loss, m.validation_correlation, m.lr
        ))
    })?;
    drop(bar);
    let q = &report.quality;
    println!(
        "best epoch {} (validation correlation {:.4}); test: mean rho {:.4}, mean oracle ceiling {:.4}, {} of {} neurons flagged (low explainable variance)",
        report.best_epoch,
        report.best_correlation,
        q.mean_rho(),
        q.mean_ceiling(),
        q.flagged.len(),
        q.rho.len()
    );
    Ok(())
}

/// Builds and saves a target, printing what it is.
pub fn target(a: TargetArgs, cx: &Context) -> anyhow::Result<()> {
    let request = TargetRequest {
        predictors: a.predictors,
        images: TargetImages::from_path(a.images.as_deref()),
        weighting: a.weighting,
        data: a.data,
        out: a.out,
    };
    let built = build_target(&request, reading(cx), cx.device, &Bar::new())?;
    let t = &built.target;
    println!(
        "{}: {} x {} {} target from {}",
        built.path.display(),
        t.matrix.n,
        t.matrix.n,
        t.meta.kind,
        t.meta.scans.join(", ")
    );
    println!("{}", built.pixel_baseline.describe());
    Ok(())
}

/// Prints (and optionally writes) Fig. 1D per predictor and both targets against the truth.
pub fn denoising(a: DenoisingArgs, cx: &Context) -> anyhow::Result<()> {
    let c = denoising_comparison(
        &a.predictors,
        reading(cx),
        a.weighting,
        cx.device,
        &Bar::new(),
    )?;
    for d in &c.scans {
        let truth = match (&d.model_vs_truth, &d.single_vs_truth) {
            (Some(m), Some(s)) => format!(
                "; r(model, noise-free) = {:.3}, r(single trial, noise-free) = {:.3}",
                m.r, s.r
            ),
            _ => String::new(),
        };
        println!(
            "{} ({} oracle images): r(model, oracle) = {:.3}, r(single trial, oracle) = {:.3}{truth}",
            d.scan, d.images, d.model_vs_oracle.r, d.single_vs_oracle.r
        );
    }
    if let Some(t) = &c.targets {
        println!(
            "targets ({} single-shown images): r(Neural (model), noise-free) = {:.3}, r(Neural (data), noise-free) = {:.3}, difference {:.3} +- {:.3} (bootstrap over images)",
            t.images,
            t.model_vs_truth,
            t.data_vs_truth,
            t.model_vs_truth - t.data_vs_truth,
            t.difference_se
        );
    }
    if let Some(path) = a.json {
        write_atomic(&path, serde_json::to_string(&c)?.as_bytes())?;
    }
    Ok(())
}

/// The command line's predictors read their scans from where their fits found them.
fn reading<'a>(cx: &'a Context) -> ScanSource<'a> {
    ScanSource {
        loaded: &[],
        read: Some(&cx.options),
    }
}
