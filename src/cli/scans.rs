//! `neureg synth`, `info`, `snr`, `oracle` and `variability`: scans and their similarity.

use std::path::PathBuf;

use anyhow::Context as _;

use super::progress_bar::Bar;
use super::Context;
use crate::atomic::write_atomic;
use crate::data::npy::encode;
use crate::data::synth::{write_synthetic, SynthConfig};
use crate::data::{load_scan, Scan, Tier};
use crate::runs::inputs::absolute_input;
use crate::similarity::analysis::analyse_oracles;
use crate::similarity::pixels::pixel_baseline;
use crate::similarity::target::matrix_and_ids;
use crate::similarity::weights::snr_weights;
use crate::train::targets::images_for;

/// `neureg synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder; scans are written as DIR/scan_<k>.zip.
    #[arg(long)]
    out: PathBuf,
    /// What to simulate.
    #[command(flatten)]
    config: SynthConfig,
    /// Write folders instead of zips.
    #[arg(long)]
    folders: bool,
}

/// `neureg info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Scan folder or zip.
    scan: PathBuf,
}

/// `neureg snr`.
#[derive(Debug, clap::Args)]
pub struct SnrArgs {
    /// Scan folder or zip.
    scan: PathBuf,
    /// Output .npy file.
    #[arg(long)]
    out: PathBuf,
}

/// `neureg oracle`.
#[derive(Debug, clap::Args)]
pub struct OracleArgs {
    /// Scan folders or zips.
    #[arg(required = true)]
    scans: Vec<PathBuf>,
    /// Output folder: <scan name>.npy per scan, image_ids.npy, pixels.npy (the images' pixel
    /// similarity) and pixel_baseline.json (the mean's agreement with it).
    #[arg(long)]
    out: PathBuf,
}

/// `neureg pixels`.
#[derive(Debug, clap::Args)]
pub struct PixelsArgs {
    /// A similarity matrix (.npy; a target, or any matrix), its rows the images its .json
    /// sidecar lists (`image_ids`), else the images of --images in order.
    matrix: PathBuf,
    /// Where its images are: a scan (its images by id) or a folder of PNG/JPEG images (ids are
    /// positions in file-name order).
    #[arg(long, default_value = "sample_data/scans/scan_1.zip")]
    images: PathBuf,
    /// Bootstrap resamplings of the images.
    #[arg(long, default_value_t = crate::similarity::pixels::RESAMPLES)]
    resamples: usize,
    /// Also write the baseline to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// `neureg variability`.
#[derive(Debug, clap::Args)]
pub struct VariabilityArgs {
    /// Scan folders or zips.
    #[arg(required = true)]
    scans: Vec<PathBuf>,
    /// Output JSON file.
    #[arg(long)]
    json: PathBuf,
}

pub fn synth(a: SynthArgs) -> anyhow::Result<()> {
    for p in write_synthetic(&a.config, &a.out, !a.folders, &Bar::new())? {
        println!("{}", p.display());
    }
    Ok(())
}

pub fn info(a: InfoArgs, cx: &Context) -> anyhow::Result<()> {
    let scan = load_scans(&[a.scan], cx)?.remove(0);
    print!("{}", describe_scan(&scan));
    Ok(())
}

pub fn snr(a: SnrArgs, cx: &Context) -> anyhow::Result<()> {
    let scan = load_scans(&[a.scan], cx)?.remove(0);
    let w = snr_weights(&scan, &scan.oracle_trials())?;
    write_atomic(&a.out, &encode(&[w.weights.len()], &w.weights))?;
    if !w.zeroed.is_empty() {
        eprintln!(
            "{} neurons have zero signal or zero noise and weight 0: {:?}",
            w.zeroed.len(),
            w.zeroed
                .iter()
                .map(|&i| scan.unit_ids[i])
                .collect::<Vec<_>>()
        );
    }
    println!("{}: {} weights", a.out.display(), w.weights.len());
    Ok(())
}

pub fn oracle(a: OracleArgs, cx: &Context) -> anyhow::Result<()> {
    let scans = load_scans(&a.scans, cx)?;
    let refs: Vec<&Scan> = scans.iter().collect();
    let analysis = analyse_oracles(&refs, cx.device, &Bar::new())?;
    report_dropped(&analysis.dropped);
    let n = analysis.image_ids.len();
    write_atomic(
        &a.out.join("image_ids.npy"),
        &encode(&[n], &analysis.image_ids),
    )?;
    for o in &analysis.oracles {
        let path = a.out.join(format!("{}.npy", o.scan));
        write_atomic(&path, &encode(&[n, n], &o.matrix.values))?;
        println!("{}", path.display());
    }
    let pixels = a.out.join("pixels.npy");
    write_atomic(&pixels, &encode(&[n, n], &analysis.pixels.values))?;
    println!("{}", pixels.display());
    let baseline = a.out.join("pixel_baseline.json");
    let text = serde_json::to_string_pretty(&analysis.pixel_baseline)
        .context("encoding the pixel baseline")?;
    write_atomic(&baseline, text.as_bytes())?;
    println!("{}", baseline.display());
    println!(
        "mean oracle similarity, {}",
        analysis.pixel_baseline.describe()
    );
    Ok(())
}

pub fn variability(a: VariabilityArgs, cx: &Context) -> anyhow::Result<()> {
    let scans = load_scans(&a.scans, cx)?;
    let refs: Vec<&Scan> = scans.iter().collect();
    let analysis = analyse_oracles(&refs, cx.device, &Bar::new())?;
    report_dropped(&analysis.dropped);
    let v = &analysis.variability;
    let text = serde_json::to_string_pretty(v).context("encoding the report")?;
    write_atomic(&a.json, text.as_bytes())?;
    println!(
        "delta_scan: n = {}, std = {:.4}; delta_repeat: n = {}, std = {:.4}",
        v.delta_scan.count, v.delta_scan.std, v.delta_repeat.count, v.delta_repeat.std
    );
    Ok(())
}

/// The pixel baseline of any matrix over its images.
pub fn pixels(a: PixelsArgs, cx: &Context) -> anyhow::Result<()> {
    let (matrix, ids) = matrix_and_ids(&a.matrix)?;
    let source = absolute_input(&a.images, Some(&cx.workspace.root));
    let (shape, images) = images_for(&source, &ids)?;
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let baseline = pixel_baseline(&matrix, &refs, shape, a.resamples, 0, cx.device)?;
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&baseline).context("encoding the baseline")?;
        write_atomic(path, text.as_bytes())?;
    }
    println!("{}: {}", a.matrix.display(), baseline.describe());
    Ok(())
}

/// Reads the scans at `paths` with a progress bar; a `sample_data/...` path the working folder
/// does not have is looked up in the sample data, as a run's inputs are.
pub(super) fn load_scans(paths: &[PathBuf], cx: &Context) -> anyhow::Result<Vec<Scan>> {
    let bar = Bar::new();
    paths
        .iter()
        .map(|p| {
            let path = absolute_input(p, Some(&cx.workspace.root));
            Ok(load_scan(&path, cx.options.clone(), &bar)?)
        })
        .collect()
}

fn report_dropped(dropped: &[(String, usize)]) {
    for (scan, n) in dropped.iter().filter(|d| d.1 > 0) {
        eprintln!("{scan}: {n} oracle images not repeated in every scan are left out");
    }
}

/// The text of `neureg info`.
pub fn describe_scan(scan: &Scan) -> String {
    let oracle = scan.oracle_trials();
    let repeats: Vec<usize> = oracle.values().map(Vec::len).collect();
    let mut out = format!("scan {} ({})\n", scan.name, scan.source.display());
    out += &format!(
        "trials: {}\nneurons: {}\n",
        scan.n_trials(),
        scan.n_neurons()
    );
    out += &format!(
        "images: {} distinct, {} x {} pixels\n",
        scan.images.len(),
        scan.image_shape.0,
        scan.image_shape.1
    );
    let tiers: Vec<String> = Tier::ALL
        .iter()
        .zip(scan.tier_counts())
        .map(|(t, c)| format!("{} {c}", t.name()))
        .collect();
    out += &format!("tiers: {}\n", tiers.join(", "));
    out += &format!(
        "oracle images: {} (repeats {})\n",
        oracle.len(),
        match (repeats.iter().min(), repeats.iter().max()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a} to {b}"),
            _ => "none".into(),
        }
    );
    if let Some(b) = &scan.behavior {
        for (k, name) in ["pupil size", "pupil size derivative", "running speed"]
            .iter()
            .enumerate()
        {
            let (lo, hi) = range(b.iter().map(|r| r[k]));
            out += &format!("{name}: {lo:.3} to {hi:.3}\n");
        }
    }
    if let Some(p) = &scan.pupil_center {
        for (k, name) in ["pupil centre x", "pupil centre y"].iter().enumerate() {
            let (lo, hi) = range(p.iter().map(|r| r[k]));
            out += &format!("{name}: {lo:.3} to {hi:.3}\n");
        }
    }
    for notice in &scan.notices {
        out += &format!("note: {notice}\n");
    }
    out += &format!(
        "ground truth: {}\n",
        if scan.ground_truth.is_some() {
            "yes"
        } else {
            "no"
        }
    );
    out
}

fn range(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}
