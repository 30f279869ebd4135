//! Benchmark of each convolution layer of ResNet18 (width 1, batch 64, 1 x 32 x 32 images) and
//! of the predictor's core (batch 32, 36 x 64 scan images): forward and backward passes in
//! neureg and in PyTorch (when python3 with torch is present), timed in the same run, as
//! GFLOP/s and neureg's relative speed (neureg's rate / PyTorch's; 1.0 = as fast). The first
//! layer's input is an image batch (no input gradient); the others need both gradients. Threads
//! follow `RAYON_NUM_THREADS` on both sides (default: all cores). Prints figures; never fails.
//!
//! Run: `cargo bench --bench conv` (`RAYON_NUM_THREADS=1 cargo bench --bench conv` for one thread)

use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

/// One layer: (batch, in channels, out channels, kernel, stride, height, width).
type Layer = (usize, usize, usize, usize, usize, usize, usize);

const LAYERS: [Layer; 14] = [
    (64, 1, 64, 3, 1, 32, 32),
    (64, 64, 64, 3, 1, 32, 32),
    (64, 64, 128, 3, 2, 32, 32),
    (64, 64, 128, 1, 2, 32, 32),
    (64, 128, 128, 3, 1, 16, 16),
    (64, 128, 256, 3, 2, 16, 16),
    (64, 256, 256, 3, 1, 8, 8),
    (64, 256, 512, 3, 2, 8, 8),
    (64, 512, 512, 3, 1, 4, 4),
    (64, 64, 64, 3, 1, 36, 64),
    (64, 512, 512, 3, 1, 5, 8),
    (32, 1, 16, 9, 1, 36, 64),
    (32, 16, 16, 7, 1, 36, 64),
    (32, 32, 16, 7, 1, 36, 64),
];

const TORCH: &str = r#"
import os, sys, time, torch
torch.set_num_threads(int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count())))
for line in sys.stdin:
    b, ci, co, k, s, h, w = map(int, line.split())
    x = torch.randn(b, ci, h, w, requires_grad=ci > 1)
    wt = torch.randn(co, ci, k, k, requires_grad=True)
    f = lambda: torch.nn.functional.conv2d(x, wt, stride=s, padding=k // 2)
    y = f()
    g = torch.randn_like(y)
    wrt = [x, wt] if ci > 1 else [wt]
    def best(fn):
        fn()
        out = []
        for _ in range(3):
            t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
        return min(out)
    fwd = best(f)
    bwd = best(lambda: torch.autograd.grad(f(), wrt, g)) - fwd
    print(fwd, bwd, flush=True)
"#;

/// Best of three runs of `f`, in seconds.
fn best(mut f: impl FnMut() -> candle_core::Result<()>) -> candle_core::Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// neureg's (forward, backward) seconds for one layer.
fn neureg(&(b, ci, co, k, s, h, w): &Layer) -> candle_core::Result<(f64, f64)> {
    let dev = Device::Cpu;
    let data = Tensor::randn(0f32, 1., (b, ci, h, w), &dev)?;
    // Images need no gradient; feature maps inside a network do.
    let x = if ci == 1 {
        data
    } else {
        Var::from_tensor(&data)?.as_tensor().clone()
    };
    let wt = Var::from_tensor(&Tensor::randn(0f32, 0.1, (co, ci, k, k), &dev)?)?;
    let conv = || neureg::nn::kernels::conv::conv2d(&x, &wt, s, k / 2);
    let probe = Tensor::randn(0f32, 1., conv()?.shape(), &dev)?;
    let fwd = best(|| conv().map(drop))?;
    let both = best(|| (conv()? * &probe)?.sum_all()?.backward().map(drop))?;
    // PyTorch is handed the output's gradient; neureg's comes from <output, probe>, so the
    // time of that product, its sum and their gradients (on a stand-in output) is taken off.
    let stand_in = Var::from_tensor(&probe)?;
    let chain = best(|| {
        (stand_in.as_tensor() * &probe)?
            .sum_all()?
            .backward()
            .map(drop)
    })?;
    Ok((fwd, (both - fwd - chain).max(1e-9)))
}

/// PyTorch's (forward, backward) seconds for every layer, if present.
fn torch() -> Option<Vec<(f64, f64)>> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", TORCH])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut input = child.stdin.take()?;
    for l in LAYERS {
        writeln!(
            input,
            "{} {} {} {} {} {} {}",
            l.0, l.1, l.2, l.3, l.4, l.5, l.6
        )
        .ok()?;
    }
    drop(input);
    let out = child.wait_with_output().ok()?;
    let times: Vec<(f64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let v: Vec<f64> = l
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect();
            (v.len() == 2).then(|| (v[0], v[1]))
        })
        .collect();
    (times.len() == LAYERS.len()).then_some(times)
}

fn main() -> candle_core::Result<()> {
    let threads = candle_core::utils::get_num_threads();
    let reference = torch();
    println!(
        "convolution layers, {threads} threads: GFLOP/s (best of 3); relative = neureg / PyTorch"
    );
    let (mut ours_total, mut torch_total) = (0.0, 0.0);
    for (i, layer) in LAYERS.iter().enumerate() {
        let &(b, ci, co, k, s, h, w) = layer;
        let (ho, wo) = ((h + 2 * (k / 2) - k) / s + 1, (w + 2 * (k / 2) - k) / s + 1);
        let flops = 2.0 * (b * co * ci * k * k * ho * wo) as f64;
        let backward_flops = if ci == 1 { flops } else { 2.0 * flops };
        let (f, bw) = neureg(layer)?;
        ours_total += f + bw;
        let label = format!("{b} x {ci} x {h} x {w} -> {co}, {k} x {k} stride {s}");
        let rate = |flops: f64, t: f64| flops / t / 1e9;
        match reference.as_ref().map(|r| r[i]) {
            Some((tf, tb)) => {
                torch_total += tf + tb;
                println!(
                    "  {label:<40} forward neureg {:>6.1} PyTorch {:>6.1} relative {:.2} | backward neureg {:>6.1} PyTorch {:>6.1} relative {:.2}",
                    rate(flops, f),
                    rate(flops, tf),
                    tf / f,
                    rate(backward_flops, bw),
                    rate(backward_flops, tb),
                    tb / bw
                );
            }
            None => println!(
                "  {label:<40} forward neureg {:>6.1} | backward neureg {:>6.1} (PyTorch not found)",
                rate(flops, f),
                rate(backward_flops, bw)
            ),
        }
    }
    if reference.is_some() {
        println!(
            "  all layers: neureg {ours_total:.3} s, PyTorch {torch_total:.3} s, relative {:.2}",
            torch_total / ours_total
        );
    }
    Ok(())
}
