//! `neureg inspect`: where in trained networks the brain's similarity structure appears.

use std::path::PathBuf;

use clap::Args;

use super::progress_bar::Bar;
use super::scans::load_scans;
use super::Context;
use crate::data::Scan;
use crate::inspect::layers::{LayerBn, LayerChoice};
use crate::inspect::neural::ReferenceChoice;
use crate::inspect::write::write_inspection;
use crate::inspect::{inspect as run_inspection, InspectRequest};
use crate::similarity::agreement::{bootstrap, MEASURES};
use crate::similarity::matrix::SimilarityMatrix;

/// `neureg inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Run folders, and VGG16/VGG19 weights files (torchvision's state dict as safetensors).
    #[arg(required = true, value_name = "RUN|VGG")]
    networks: Vec<PathBuf>,
    /// Scans whose common oracle images are shown to the networks (default: the four sample
    /// scans); their mean oracle similarity is the neural matrix.
    #[arg(long, value_delimiter = ',', conflicts_with = "target_of")]
    images: Vec<PathBuf>,
    /// Compare with this run's target instead, on some of its images (those the similarity
    /// loss saw).
    #[arg(long, value_name = "RUN")]
    target_of: Option<PathBuf>,
    /// How many of the target's images, spread evenly over its rows (with --target-of).
    #[arg(long, default_value_t = 100, requires = "target_of")]
    target_images: usize,
    /// A run's tapped layers (a VGG's conv<block>_1 layers), or every conv layer.
    #[arg(long, value_enum, default_value = "taps")]
    layers: LayerChoice,
    /// How a run's batch norm normalises the images: by its running statistics (eval), or as
    /// its similarity pass normalised the scan images (as-loss). Default: eval, and as-loss
    /// with --target-of.
    #[arg(long, value_enum)]
    batch_norm: Option<LayerBn>,
    /// Bootstrap resamples of the images per interval.
    #[arg(long, default_value_t = 200)]
    resamples: usize,
    /// Seed of the resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the matrices (.npy), agreement.csv, inspection.json and the figures.
    #[arg(long)]
    out: PathBuf,
}

/// Inspects the runs, prints each layer's RSA and debiased CKA and writes everything to --out.
pub fn inspect(a: InspectArgs, cx: &Context) -> anyhow::Result<()> {
    let batch_norm = a.batch_norm.unwrap_or(match a.target_of {
        Some(_) => LayerBn::AsLoss,
        None => LayerBn::Eval,
    });
    let (reference, images) = match a.target_of {
        Some(run) => (
            ReferenceChoice::TargetOf {
                run,
                images: a.target_images,
            },
            Vec::new(),
        ),
        None if a.images.is_empty() => (
            ReferenceChoice::Oracle,
            (1..=4)
                .map(|k| PathBuf::from(format!("sample_data/scans/scan_{k}.zip")))
                .collect(),
        ),
        None => (ReferenceChoice::Oracle, a.images),
    };
    let scans = load_scans(&images, cx)?;
    let refs: Vec<&Scan> = scans.iter().collect();
    let request = InspectRequest {
        networks: a.networks,
        reference,
        layers: a.layers,
        batch_norm,
        resamples: a.resamples,
        seed: a.seed,
    };
    let bar = Bar::new();
    let result = run_inspection(&request, &refs, cx.device, &bar)?;
    drop(bar);
    println!(
        "{} against {} images ({}); {}; 95% intervals over {} resamplings",
        result.neural.matrix_name,
        result.neural.image_ids.len(),
        result.neural.source,
        request.batch_norm.describe(),
        request.resamples
    );
    let line = |what: &str, t: [(f64, f64, f64); 4]| {
        let f = |(v, lo, hi): (f64, f64, f64)| format!("{v:>6.3} [{lo:>6.3}, {hi:>6.3}]");
        println!("  {what:<22} RSA r {}   debiased CKA {}", f(t[0]), f(t[3]));
    };
    if let Some(c) = &result.neural.ceiling {
        let v = MEASURES.map(|(_, get)| get(&c.split_half));
        println!(
            "  ceiling (split-half)   RSA r {:>6.3}  (all repeats, Spearman-Brown {:.3})   debiased CKA {:>6.3}",
            v[0], c.rsa_pearson_full, v[3]
        );
    }
    line("pixels", result.pixels.estimate.triples());
    for r in &result.networks {
        println!("{} — {}", r.about.name, r.about.label);
        for l in &r.layers {
            line(
                &format!("{:>2} {}", l.layer.layer, l.layer.name),
                l.estimate.triples(),
            );
        }
    }
    let written = write_inspection(&result, &a.out)?;
    println!("wrote {} files to {}", written.len(), a.out.display());
    Ok(())
}

/// `neureg agreement`.
#[derive(Debug, Args)]
pub struct AgreementArgs {
    /// A square similarity matrix (.npy).
    a: PathBuf,
    /// Another over the same images in the same order.
    b: PathBuf,
    /// Bootstrap resamples of the images per interval (0: no intervals).
    #[arg(long, default_value_t = 0)]
    resamples: usize,
    /// Seed of the resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Prints RSA, CKA and debiased CKA of two matrices as JSON (with intervals when resampling).
pub fn agreement(a: AgreementArgs) -> anyhow::Result<()> {
    let (k, l) = (
        SimilarityMatrix::read_npy(&a.a)?,
        SimilarityMatrix::read_npy(&a.b)?,
    );
    let value = if a.resamples == 0 {
        serde_json::to_value(crate::similarity::agreement::agreement(&k, &l)?)?
    } else {
        serde_json::to_value(bootstrap(&k, &l, a.resamples, a.seed)?)?
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}
