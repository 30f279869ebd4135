//! What the experiment tests share: a tiny plan on the shipped samples.

use std::path::{Path, PathBuf};

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
