//! `neureg experiment`: a whole comparison from a plan, run here, unit by unit or as a Slurm array.

use std::path::{Path, PathBuf};

use super::progress_bar::Bar;
use super::Context;
use crate::experiment::check::check_plan;
use crate::experiment::report::{write_report, Report};
use crate::experiment::slurm::{submit, write_array, SlurmOptions, PAUSED_EXIT};
use crate::experiment::status::statuses;
use crate::experiment::unit::{run_all, run_unit};
use crate::experiment::{Experiment, Plan, Preset};
use crate::progress::Progress;
use crate::runs::Workspace;
use crate::samples::find_sample;
use anyhow::Context as _;

/// `neureg experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// A plan (.toml or .json) or an experiment folder (holding plan.json).
    source: Option<PathBuf>,
    /// Start from a preset plan instead.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Experiment folder (default: the workspace's experiments/<plan name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Change a setting of the plan: key=value, e.g. training.epochs=10, seeds=[0,1],
    /// noise.samples=200 (repeatable).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Run only this unit (a Slurm array task), then rebuild the report.
    #[arg(long)]
    unit: Option<usize>,
    /// Print each unit's state and what is missing, and run nothing.
    #[arg(long)]
    status: bool,
    /// Check the plan (settings, data set, every target, the folder) and list every problem;
    /// run and write nothing.
    #[arg(long)]
    check: bool,
    /// Rebuild the report from what is there, and run nothing.
    #[arg(long)]
    report: bool,
    /// Write slurm/array.sbatch (one array task per unit) instead of running here.
    #[arg(long)]
    slurm: bool,
    /// Submit the array with sbatch (with --slurm).
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// What the array asks of the cluster.
    #[command(flatten)]
    cluster: SlurmOptions,
}

/// Checks, shows, reports, writes (and submits) the array of, or runs the experiment.
pub fn experiment(a: ExperimentArgs, cx: &Context) -> anyhow::Result<()> {
    let (plan, dir) = resolve(a.source, a.preset, a.out, &a.overrides, cx.workspace)?;
    let problems = if a.check || a.slurm {
        check_plan(&plan, &dir)
    } else {
        Vec::new()
    };
    if a.check || !problems.is_empty() {
        if problems.is_empty() {
            println!(
                "{}: the plan can run ({} units)",
                plan.name,
                plan.units().len()
            );
            return Ok(());
        }
        for p in &problems {
            eprintln!("problem: {p}");
        }
        anyhow::bail!("the plan has {} problems; nothing was run", problems.len());
    }
    let exp = Experiment::create(&dir, &plan)?;
    if a.status {
        print_status(&exp);
    } else if a.report {
        print_report(&exp, &write_report(&exp)?);
    } else if a.slurm {
        let binary = std::env::current_exe().context("locating the neureg binary")?;
        let extra: Vec<String> = device_arguments(&a.cluster);
        let script = write_array(&exp, &a.cluster, &binary, &extra)?;
        println!("{}", script.display());
        if a.submit {
            let job = submit(&script)?;
            println!(
                "submitted job array {job}: {} tasks; `neureg experiment {} --status` shows them",
                exp.units().len(),
                exp.dir.display()
            );
        }
    } else {
        let progress = Interruptible::new()?;
        let report = match a.unit {
            Some(k) => {
                let u = exp.unit(k)?;
                eprintln!("unit {k}: {}", u.name);
                run_unit(&exp, &u, cx.device, &progress, &mut |stage| {
                    eprintln!("unit {k} ({}): {stage}", u.name)
                })
                .map(|state| eprintln!("unit {k} ({}): {state:?}", u.name))
                .and_then(|()| Ok((write_report(&exp)?, Vec::new())))
            }
            None => run_all(&exp, cx.device, &progress, &mut |u, what| {
                eprintln!("unit {} ({}): {what}", u.index, u.name)
            }),
        };
        let (report, failed) = match report {
            Err(crate::Error::Paused(why)) => {
                eprintln!("paused: {why}; run the same command again to resume");
                drop(progress);
                std::process::exit(PAUSED_EXIT);
            }
            other => other?,
        };
        print_report(&exp, &report);
        if !failed.is_empty() {
            let why: Vec<String> = failed
                .iter()
                .map(|(u, e)| format!("{}: {e}", u.name))
                .collect();
            anyhow::bail!("{} units failed: {}", failed.len(), why.join("; "));
        }
    }
    Ok(())
}

/// The plan of `source` (a plan file or an experiment folder) or of a preset, with the
/// overrides applied, and its folder: a new one goes into the workspace unless `out` says where.
fn resolve(
    source: Option<PathBuf>,
    preset: Option<Preset>,
    out: Option<PathBuf>,
    overrides: &[String],
    workspace: &Workspace,
) -> anyhow::Result<(Plan, PathBuf)> {
    let plan = match (&source, preset) {
        (Some(_), Some(_)) => anyhow::bail!("give a plan or a preset, not both"),
        (Some(dir), None) if Experiment::plan_path(dir).is_file() => {
            if !overrides.is_empty() {
                anyhow::bail!(
                    "{} is an experiment folder: its plan is fixed (start a new folder to change settings)",
                    dir.display()
                );
            }
            return Ok((Experiment::open(dir)?.plan, dir.clone()));
        }
        (Some(dir), None) if dir.is_dir() => anyhow::bail!(
            "{}: neither a plan file nor an experiment folder (no plan.json)",
            dir.display()
        ),
        (Some(path), None) => Plan::read(path)?,
        (None, Some(p)) => Plan::preset(p, &find_sample(Path::new(""), Some(&workspace.root))?),
        (None, None) => anyhow::bail!("give a plan file, an experiment folder or --preset"),
    };
    let plan = plan.with_overrides(overrides)?;
    let dir = out.unwrap_or_else(|| workspace.experiments().join(&plan.name));
    Ok((plan, dir))
}

/// The device the array's tasks ask for: CUDA on their node when the array asks for GPUs (a task
/// then fails at once, saying why, where the binary has no CUDA or the node no GPU); otherwise
/// none, so that each node picks its default. Never the submitting machine's device.
fn device_arguments(cluster: &SlurmOptions) -> Vec<String> {
    if cluster.gpus.is_some_and(|g| g > 0) {
        vec!["--device".into(), "cuda".into()]
    } else {
        Vec::new()
    }
}

/// `neureg experiment --status`.
fn print_status(exp: &Experiment) {
    let all = statuses(exp);
    let done = all
        .iter()
        .filter(|s| s.state == crate::experiment::status::UnitState::Done)
        .count();
    println!("{}: {done} of {} units done", exp.dir.display(), all.len());
    for s in &all {
        println!(
            "{:>3} {:<28} {}",
            s.unit.index,
            s.unit.name,
            s.describe(exp.plan.training.epochs)
        );
    }
}

/// Prints a report's opening lines and where it is.
fn print_report(exp: &Experiment, report: &Report) {
    for line in &report.summary {
        println!("{line}");
    }
    println!("{}", exp.report_dir().join("report.md").display());
}

/// Progress on standard error that a cluster's USR1 or a TERM asks to pause (Slurm may send
/// TERM twice, to the batch shell and to the process; Ctrl-C still ends at once).
struct Interruptible {
    bar: Bar,
    pause: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Interruptible {
    fn new() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGTERM, SIGUSR1};
        let pause = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(SIGTERM, pause.clone())?;
        signal_hook::flag::register(SIGUSR1, pause.clone())?;
        Ok(Interruptible {
            bar: Bar::new(),
            pause,
        })
    }
}

impl Progress for Interruptible {
    fn stage(&self, name: &str, total: u64) {
        self.bar.stage(name, total)
    }
    fn advance(&self, n: u64) {
        self.bar.advance(n)
    }
    fn pause_requested(&self) -> bool {
        self.pause.load(std::sync::atomic::Ordering::SeqCst)
    }
}
