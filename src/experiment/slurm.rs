//! Slurm job arrays: neureg writes `slurm/array.sbatch` (one array task per unit of the plan)
//! and submits it with `sbatch`; it schedules nothing itself.
//!
//! Time limits and preemption: `--signal=B:USR1@120` has Slurm signal the batch shell two
//! minutes before the limit; the script passes it to the unit, which checkpoints at its next
//! step and exits with [`PAUSED_EXIT`], and the script requeues the task
//! (`scontrol requeue JOB_TASK`). A requeue from outside or a preemption sends TERM, which the
//! unit treats alike (Slurm then requeues the task itself, `--requeue`). The requeued task runs
//! the same unit again and resumes from its checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::experiment::Experiment;

/// The exit status of a unit that saved its state and stopped when asked to (EX_TEMPFAIL).
pub const PAUSED_EXIT: i32 = 75;

/// What the array asks of the cluster (the flags of `neureg experiment --slurm`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct SlurmOptions {
    /// Partition (`--partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each task, e.g. 4:00:00 (`--time`).
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs per task (`--gpus-per-task`).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// CPUs per task (`--cpus-per-task`).
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Memory per task, e.g. 16G (`--mem`).
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=0-K%N`).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Further `#SBATCH` lines, e.g. '--account=lab' (repeatable).
    #[arg(long = "sbatch-line")]
    pub sbatch_lines: Vec<String>,
}

/// The script's path in an experiment folder.
pub fn script_path(exp: &Experiment) -> PathBuf {
    exp.dir.join("slurm").join("array.sbatch")
}

/// Quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The array script: each task runs `binary experiment DIR --unit $SLURM_ARRAY_TASK_ID` plus
/// `extra` arguments (e.g. `--device cuda`).
pub fn array_script(
    exp: &Experiment,
    options: &SlurmOptions,
    binary: &Path,
    extra: &[String],
) -> Result<String> {
    let units = exp.units().len();
    let dir = std::path::absolute(&exp.dir).map_err(|e| Error::io(&exp.dir, e))?;
    let logs = dir.join("slurm").join("logs");
    let mut s = String::from("#!/bin/bash\n");
    let mut line = |l: String| {
        s.push_str("#SBATCH ");
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("--job-name=neureg-{}", exp.plan.name));
    line(match options.parallel {
        Some(n) => format!("--array=0-{}%{n}", units - 1),
        None => format!("--array=0-{}", units - 1),
    });
    line(format!("--output={}/%A_%a.out", logs.display()));
    line("--open-mode=append".into());
    line("--requeue".into());
    line("--signal=B:USR1@120".into());
    if let Some(p) = &options.partition {
        line(format!("--partition={p}"));
    }
    if let Some(t) = &options.time {
        line(format!("--time={t}"));
    }
    if let Some(g) = options.gpus {
        line(format!("--gpus-per-task={g}"));
    }
    if let Some(c) = options.cpus {
        line(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &options.mem {
        line(format!("--mem={m}"));
    }
    for extra_line in &options.sbatch_lines {
        line(
            extra_line
                .trim()
                .trim_start_matches("#SBATCH")
                .trim()
                .to_string(),
        );
    }
    let mut command = vec![
        quote(&binary.display().to_string()),
        "experiment".into(),
        quote(&dir.display().to_string()),
        "--unit".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
    ];
    command.extend(extra.iter().map(|a| quote(a)));
    s.push_str(&format!(
        r#"
# Written by neureg {version}: one task per unit of {plan}.
# USR1 (time limit near): the unit checkpoints, exits with {paused}, and the task is requeued.
# TERM (scontrol requeue, preemption, scancel): the unit checkpoints and exits; this shell
# waits for it, since Slurm kills what is left of a step once its batch shell ends.
asked=""
pid=""
trap 'asked=1; [ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null' USR1
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null' TERM
echo "task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID on $(hostname), start ${{SLURM_RESTART_COUNT:-0}}"
{command} &
pid=$!
status=0
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
done
if [ "$status" -eq {paused} ] && [ -n "$asked" ]; then
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$status"
"#,
        version = env!("CARGO_PKG_VERSION"),
        plan = Experiment::plan_path(&dir).display(),
        paused = PAUSED_EXIT,
        command = command.join(" "),
    ));
    Ok(s)
}

/// Writes the array script into the experiment folder and returns its path.
pub fn write_array(
    exp: &Experiment,
    options: &SlurmOptions,
    binary: &Path,
    extra: &[String],
) -> Result<PathBuf> {
    let path = script_path(exp);
    let logs = exp.dir.join("slurm").join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    write_atomic(&path, array_script(exp, options, binary, extra)?.as_bytes())?;
    Ok(path)
}

/// Submits `script` with `sbatch --parsable` and returns the job id.
pub fn submit(script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| {
            Error::Config(format!(
                "cannot run sbatch ({e}): submit from a Slurm login node, or run `sbatch {}` there",
                script.display()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::file(
            script.display(),
            format!(
                "sbatch refused it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Plan, Preset};

    #[test]
    fn the_script_asks_for_the_array_signal_and_requeue_and_runs_one_unit_per_task() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::preset(Preset::Lecture, Path::new("/samples"));
        let exp = Experiment::create(&dir.path().join("it's"), &plan).unwrap();
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            gpus: Some(1),
            parallel: Some(4),
            sbatch_lines: vec!["#SBATCH --account=lab".into()],
            ..SlurmOptions::default()
        };
        let s = array_script(
            &exp,
            &options,
            Path::new("/opt/neureg"),
            &["--device".into(), "cuda".into()],
        )
        .unwrap();
        // One task per unit: the lecture preset has 6 conditions x 4 seeds.
        let array = format!("#SBATCH --array=0-{}%4\n", exp.units().len() - 1);
        assert_eq!(exp.units().len(), 24);
        for want in [
            array.as_str(),
            "#SBATCH --requeue\n",
            "#SBATCH --signal=B:USR1@120\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --time=1:00:00\n",
            "#SBATCH --gpus-per-task=1\n",
            "#SBATCH --account=lab\n",
            "'/opt/neureg' experiment ",
            "it'\\''s' --unit \"$SLURM_ARRAY_TASK_ID\" '--device' 'cuda' &",
            "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
        ] {
            assert!(s.contains(want), "{want} missing from\n{s}");
        }
    }
}
