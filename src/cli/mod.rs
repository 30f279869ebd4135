//! The command line: one small function per subcommand (one file per group of them) that parses,
//! calls the library's pipeline and prints. Shared here: the arguments, the context every
//! subcommand gets and the device choice.

mod experiment;
mod inspect;
mod predictor;
mod progress_bar;
mod robustness;
mod scans;
mod speed;
mod train;

use std::path::PathBuf;

use candle_core::Device;
use clap::{Parser, Subcommand};

use crate::data::LoadOptions;
use crate::runs::Workspace;

pub use scans::describe_scan;

/// neureg: learning from brains how to regularise machines. Without a subcommand it opens the window.
#[derive(Debug, Parser)]
#[command(name = "neureg", version, about)]
pub struct Cli {
    /// Computing device: cpu, cuda or cuda:N (default: CUDA when built with it and present, else CPU).
    #[arg(long, global = true)]
    pub device: Option<String>,
    /// Downsample scan images on loading, e.g. 36x64 (area averaging; sizes must divide evenly).
    #[arg(long, global = true, value_parser = parse_size)]
    pub downsample: Option<(usize, usize)>,
    /// How NWB files are read.
    #[command(flatten)]
    pub nwb: crate::data::nwb::NwbOptions,
    /// The workspace: where runs and experiments go by default (default: $NEUREG_WORKSPACE, else
    /// workspace/ in the platform's data directory, e.g. ~/.local/share/neureg/workspace).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
    /// What to do; none opens the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate synthetic scans (simulated V1 responses to natural-image patches).
    Synth(scans::SynthArgs),
    /// Print a scan's trials, neurons, tiers, oracle images and behaviour ranges.
    Info(scans::InfoArgs),
    /// Write the signal-to-noise weights (Eq. 1), one per neuron in the scan's order.
    Snr(scans::SnrArgs),
    /// Write each scan's oracle similarity (Eq. 3) over the oracle images common to all.
    Oracle(scans::OracleArgs),
    /// Fit the denoising predictive model (docs/method.md section 6) to one scan; resumes a fit left in --out.
    FitPredictor(predictor::FitArgs),
    /// Build a regularisation target (Eq. 6) from fitted predictors: .npy plus a .json sidecar.
    Target(predictor::TargetArgs),
    /// How well the predictors denoise (Fig. 1D): model and single-trial similarity against the
    /// oracle similarity and, on synthetic scans, against the noise-free similarity; also both
    /// targets of the single-shown images against the noise-free similarity.
    Denoising(predictor::DenoisingArgs),
    /// Train a classifier with the similarity loss (docs/method.md section 7) into run folders; a run left
    /// unfinished in its folder resumes from its last checkpoint.
    Train(train::TrainArgs),
    /// Accuracy under noise (docs/method.md section 8, Fig. 4) of trained runs, stored in each run's results/, and
    /// the mean and SEM over the seeds of each condition written to --out.
    EvalNoise(robustness::NoiseArgs),
    /// Minimal adversarial perturbations (docs/method.md section 8) of a trained run: per sample the smallest
    /// verified distance, the median, stored in the run's results/; --out gets the result and
    /// PNGs of the first examples (original, perturbation amplified around gray, adversarial).
    Attack(robustness::AttackArgs),
    /// Run a whole comparison (conditions x strengths x seeds, trained, then noise and attacks,
    /// then a report) from a plan, a preset or an experiment folder; resumes what is unfinished.
    Experiment(experiment::ExperimentArgs),
    /// Write delta_scan and delta_repeat (Eq. 4, 5): counts, standard deviations, histograms.
    Variability(scans::VariabilityArgs),
    /// The pixel baseline of a similarity matrix: its agreement (Pearson, Spearman, bootstrap
    /// intervals over images) with the pixel similarity of its images, raw and low-passed.
    Pixels(scans::PixelsArgs),
    /// Images per second of ResNet18 training (with and without the similarity loss) and
    /// inference on random data, on the chosen device.
    Speed(speed::SpeedArgs),
    /// Per-layer similarity of trained runs and VGGs against the neural matrix on the scans'
    /// oracle images (or a run's target on its images): RSA and CKA with bootstrap intervals,
    /// the noise ceiling and the pixel baseline.
    Inspect(inspect::InspectArgs),
    /// RSA (Pearson, Spearman), linear CKA and debiased CKA of two similarity matrices (.npy).
    Agreement(inspect::AgreementArgs),
}

/// What every subcommand works with.
pub struct Context<'a> {
    /// The computing device.
    pub device: &'a Device,
    /// How scans are read.
    pub options: LoadOptions,
    /// Where new artefacts go by default.
    pub workspace: &'a Workspace,
}

/// Runs `command`.
pub fn run(
    command: Command,
    device: &Device,
    options: LoadOptions,
    workspace: &Workspace,
) -> anyhow::Result<()> {
    let cx = Context {
        device,
        options,
        workspace,
    };
    match command {
        Command::Synth(a) => scans::synth(a),
        Command::Info(a) => scans::info(a, &cx),
        Command::Snr(a) => scans::snr(a, &cx),
        Command::Oracle(a) => scans::oracle(a, &cx),
        Command::Variability(a) => scans::variability(a, &cx),
        Command::Pixels(a) => scans::pixels(a, &cx),
        Command::FitPredictor(a) => predictor::fit(a, &cx),
        Command::Target(a) => predictor::target(a, &cx),
        Command::Denoising(a) => predictor::denoising(a, &cx),
        Command::Train(a) => train::train(a, &cx),
        Command::EvalNoise(a) => robustness::eval_noise(a, &cx),
        Command::Attack(a) => robustness::attack(a, &cx),
        Command::Experiment(a) => experiment::experiment(a, &cx),
        Command::Speed(a) => speed::speed(a, &cx),
        Command::Inspect(a) => inspect::inspect(a, &cx),
        Command::Agreement(a) => inspect::agreement(a),
    }
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s.split_once(['x', 'X']).ok_or("expected HxW, e.g. 36x64")?;
    let h = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    let w = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    Ok((h, w))
}

/// The device named on the command line, or the default.
pub fn choose_device(spec: Option<&str>) -> crate::Result<Device> {
    match spec {
        Some(s) => crate::device::open(s),
        None => Ok(crate::device::default_device()),
    }
}
