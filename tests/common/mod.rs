//! What the integration tests share: running the binary and other programs, and a tiny
//! experiment plan on the shipped samples. Each test crate uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `neureg` binary.
pub fn neureg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neureg"))
        .args(args)
        .output()
        .expect("running neureg")
}

/// Runs `program`, asserts that it succeeded and returns its standard output.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `neureg`, asserts that it succeeded and returns its standard output.
pub fn ok(args: &[&str]) -> String {
    run(env!("CARGO_BIN_EXE_neureg"), args)
}

/// The flags of a one-epoch run of a 1/16-width ResNet18 in batches of 16, logging every step.
pub const TINY_RUN: [&str; 8] = [
    "--width",
    "0.0625",
    "--epochs",
    "1",
    "--batch",
    "16",
    "--log-every",
    "1",
];

/// The project folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `dir/plan.toml`: None, Neural (model) and Shuffle on the shipped samples, a
/// 1/16-width ResNet18 on `train_limit` images for `epochs` epochs, two seeds, Gaussian noise
/// at two levels on 40 test images and an FMN L2 attack on 4 of them.
pub fn tiny_plan(dir: &Path, train_limit: usize, epochs: usize) -> PathBuf {
    let samples = root().join("sample_data");
    let text = format!(
        r#"name = "tiny"
seeds = [0, 1]

[training]
data = "{data}"
images = "{images}"
train_limit = {train_limit}
test_limit = 40
width = 0.0625
epochs = {epochs}
batch = 16
lr = 0.05
log_every = 2

[[conditions]]
condition = "none"

[[conditions]]
condition = "neural-model"
target = "{target}"
strengths = [5]

[[conditions]]
condition = "shuffle"
target = "{target}"
strengths = [5]

[noise]
levels = [0.0, 0.1]
samples = 40

[[attacks]]
attack = "fmn"
norm = "l2"
samples = 4
batch = 4
steps = 10
"#,
        data = samples.join("fashion-mnist").display(),
        images = samples.join("scans/scan_1.zip").display(),
        target = samples.join("targets/neural_model.npy").display(),
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The device the tests of training, attacks and similarity run on: `$NEUREG_TEST_DEVICE`
/// (`cpu`, `cuda`, `cuda:N`), CPU when unset, so that CI is unchanged and a GPU machine runs the
/// same tests with `NEUREG_TEST_DEVICE=cuda`.
pub fn device() -> candle_core::Device {
    let spec = std::env::var("NEUREG_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    neureg::device::open(&spec).unwrap_or_else(|e| panic!("NEUREG_TEST_DEVICE={spec}: {e}"))
}
