//! An experiment as a Slurm job array on a real one-node cluster (start it with
//! `scripts/slurm_one_node.sh`; `.ci/run` does): submitted with `neureg experiment --slurm
//! --submit`, one task requeued mid-run with `scontrol requeue`, and every unit finished with no
//! metrics line lost or repeated, the requeued one resumed from its mid-epoch checkpoint, and the
//! report built.
//!
//! `cargo test --test slurm -- --ignored` (ignored by default: it needs the cluster).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use neureg::experiment::status::{statuses, UnitState};
use neureg::experiment::Experiment;
use neureg::runs::store::RunInfo;
use neureg::runs::MetricEvent;

use common::run;

/// The events of a run folder (none yet: empty).
fn events(dir: &Path) -> Vec<MetricEvent> {
    RunInfo::read(dir).map(|r| r.events).unwrap_or_default()
}

/// The state of task `task` of `job` in squeue ("" once it has left the queue).
fn task_state(job: &str, task: usize) -> String {
    run(
        "squeue",
        &["-h", "-j", &format!("{job}_{task}"), "-o", "%T"],
    )
    .trim()
    .to_string()
}

#[test]
#[ignore = "needs a Slurm cluster: bash scripts/slurm_one_node.sh"]
fn an_experiment_runs_as_a_slurm_array_and_a_requeued_task_resumes_mid_epoch() {
    assert!(
        Command::new("sinfo")
            .output()
            .is_ok_and(|o| o.status.success()),
        "no Slurm cluster answers: run `bash scripts/slurm_one_node.sh` first"
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = common::tiny_plan(dir.path(), 320, 2);
    let exp_dir = dir.path().join("exp");
    let out = run(
        env!("CARGO_BIN_EXE_neureg"),
        &[
            "experiment",
            plan.to_str().unwrap(),
            "--out",
            exp_dir.to_str().unwrap(),
            "--slurm",
            "--submit",
            "--cpus",
            "1",
            "--parallel",
            "2",
        ],
    );
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("submitted job array "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {out}"))
        .to_string();
    let exp = Experiment::open(&exp_dir).unwrap();
    let units = exp.units();
    assert_eq!(units.len(), 6);
    let logs = exp_dir.join("slurm/logs");
    let log_of = |task: usize| {
        std::fs::read_to_string(logs.join(format!("{job}_{task}.out"))).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(1200);
    let wait = |what: &str, done: &mut dyn FnMut() -> bool| {
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; squeue: {}; logs: {}",
                run("squeue", &[]),
                (0..6).map(log_of).collect::<Vec<_>>().join("\n---\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Task 1 mid-training (past its first metrics lines, before the end of epoch 1): requeue.
    let second = exp.unit_dir(&units[1]);
    let steps = |dir: &Path| {
        events(dir)
            .iter()
            .filter(|e| matches!(e, MetricEvent::Step { .. }))
            .count()
    };
    wait("task 1 to train", &mut || steps(&second) >= 2);
    let before = events(&second);
    assert!(
        !before
            .iter()
            .any(|e| matches!(e, MetricEvent::Epoch { .. })),
        "task 1 finished its first epoch before it could be requeued: make the plan longer"
    );
    run("scontrol", &["requeue", &format!("{job}_1")]);
    // Slurm holds a requeued job for about two minutes; let it start again at once.
    wait("task 1 to be pending again", &mut || {
        task_state(&job, 1) == "PENDING"
    });
    run(
        "scontrol",
        &["update", &format!("JobId={job}_1"), "StartTime=now"],
    );

    wait("every unit to finish", &mut || {
        statuses(&exp).iter().all(|s| s.state == UnitState::Done)
            && (0..6).all(|t| task_state(&job, t).is_empty())
    });

    // The requeued task paused, resumed from its mid-epoch checkpoint, and lost or repeated
    // nothing: its metrics equal those of the same run trained here without a break.
    let log = log_of(1);
    assert!(log.contains("start 0") && log.contains("start 1"), "{log}");
    assert!(
        log.contains("paused:") && log.contains("saved at step"),
        "{log}"
    );
    let again = dir.path().join("again");
    run(
        env!("CARGO_BIN_EXE_neureg"),
        &[
            "train",
            "--config",
            second.join("config.json").to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
    );
    assert_eq!(events(&again), events(&second));
    assert!(
        std::fs::read(again.join("checkpoints/last.safetensors")).unwrap()
            == std::fs::read(second.join("checkpoints/last.safetensors")).unwrap()
    );
    let report = std::fs::read_to_string(exp_dir.join("report/report.md")).unwrap();
    assert!(report.contains("All 6 units are done."), "{report}");
}
