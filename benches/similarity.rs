//! Benchmark of docs/method.md sections 2-4 at the paper's size, against the same computation in
//! NumPy timed in the same run (when python3 with numpy is present).
//! Prints figures; never fails.
//!
//! Run: `cargo bench --bench similarity`

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use candle_core::Device;
use neureg::atomic::write_atomic;
use neureg::data::npy::encode;
use neureg::data::{Scan, Tier};
use neureg::similarity::matrix::similarity_matrix;
use neureg::similarity::oracle::oracle_similarity;
use rand::{Rng, SeedableRng};

/// The same two computations in NumPy (float32, as neureg computes).
const NUMPY: &str = r#"
import sys, time, numpy as np
d = sys.argv[1]
def unit(x, w):
    x = x * w
    c = x - x.mean(axis=0, keepdims=True)
    return c / np.linalg.norm(c, axis=1, keepdims=True)
def best(f, reps=3):
    t = []
    for _ in range(reps):
        s = time.perf_counter(); f(); t.append(time.perf_counter() - s)
    return min(t)
r = np.load(d + "/oracle.npy"); w = np.load(d + "/w_oracle.npy"); reps = int(sys.argv[2])
def oracle():
    e = unit(r, w); g = e @ e.T
    k = g.shape[0] // reps
    s = g.reshape(k, reps, k, reps).sum(axis=(1, 3))
    diag = np.einsum('aiai->a', g.reshape(k, reps, k, reps))
    s[np.arange(k), np.arange(k)] -= diag
    cnt = np.full((k, k), reps * reps, dtype=np.float32); cnt[np.arange(k), np.arange(k)] = reps * (reps - 1)
    return s / cnt
x = np.load(d + "/single.npy"); w2 = np.load(d + "/w_single.npy")
def single():
    e = unit(x, w2); return e @ e.T
print(best(oracle), best(single))
"#;

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let (images, repeats, neurons, singles) = (100usize, 10usize, 8000usize, 5000usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let oracle_rows: Vec<f32> = (0..images * repeats * neurons)
        .map(|_| rng.random_range(0.0..3.0))
        .collect();
    let single_rows: Vec<f32> = (0..singles * neurons)
        .map(|_| rng.random_range(0.0..3.0))
        .collect();
    let weights: Vec<f32> = (0..neurons).map(|_| rng.random_range(0.1..2.0)).collect();
    // Trials grouped by image, as the NumPy reshape expects.
    let image_ids: Vec<i64> = (0..images as i64)
        .flat_map(|i| std::iter::repeat_n(i, repeats))
        .collect();
    let scan = Scan {
        name: "bench".into(),
        source: Default::default(),
        tiers: vec![Tier::Test; image_ids.len()],
        unit_ids: (0..neurons as i64).collect(),
        responses: oracle_rows.clone(),
        behavior: None,
        pupil_center: None,
        image_shape: (1, 1),
        images: (0..images as i64).map(|i| (i, vec![0.0])).collect(),
        neurons: Default::default(),
        ground_truth: None,
        image_ids,
        notices: Vec::new(),
    };
    let ids: Vec<i64> = (0..images as i64).collect();
    let device = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());
    let t_oracle = best_of(3, || {
        oracle_similarity(&scan, &ids, &weights, &device).expect("oracle similarity");
    });
    let t_single = best_of(3, || {
        similarity_matrix(&single_rows, singles, &weights, &device, "bench").expect("similarity");
    });
    println!("neureg oracle similarity, {images} images x {repeats} repeats x {neurons} neurons: {:.3} s", t_oracle);
    println!(
        "neureg similarity matrix, {singles} images x {neurons} neurons: {:.3} s",
        t_single
    );

    let dir = std::env::temp_dir().join(format!("neureg-bench-{}", std::process::id()));
    let write = |name: &str, shape: &[usize], data: &[f32]| {
        write_atomic(&dir.join(name), &encode(shape, data)).expect("writing bench data")
    };
    write("oracle.npy", &[images * repeats, neurons], &oracle_rows);
    write("w_oracle.npy", &[neurons], &weights);
    write("single.npy", &[singles, neurons], &single_rows);
    write("w_single.npy", &[neurons], &weights);
    match numpy_times(&dir, repeats) {
        Some((n_oracle, n_single)) => {
            println!(
                "numpy  oracle similarity: {n_oracle:.3} s -> relative speed (numpy's time / neureg's) {:.2}",
                n_oracle / t_oracle
            );
            println!(
                "numpy  similarity matrix: {n_single:.3} s -> relative speed (numpy's time / neureg's) {:.2}",
                n_single / t_single
            );
        }
        None => {
            println!("numpy not available (python3 -c 'import numpy' failed): no reference timing")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn numpy_times(dir: &Path, repeats: usize) -> Option<(f64, f64)> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(NUMPY)
        .arg(dir)
        .arg(repeats.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().filter_map(|v| v.parse().ok());
    Some((it.next()?, it.next()?))
}
