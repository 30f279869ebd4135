//! Benchmark of one convolution's forward and backward pass on the predictor's
//! and the CIFAR ResNet's shapes: neureg's im2col + gemm convolution, candle's
//! own conv2d, and PyTorch's (when python3 with torch is present) timed in the
//! same run. The first layer's input is an image batch (no input gradient);
//! the others need both gradients. Prints figures; never fails.
//!
//! Run: `cargo bench --bench conv`

use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

/// (batch, in channels, out channels, kernel, height, width).
const SHAPES: [(usize, usize, usize, usize, usize, usize); 4] = [
    (32, 1, 16, 9, 36, 64),
    (32, 16, 16, 7, 36, 64),
    (32, 32, 16, 7, 36, 64),
    (64, 16, 16, 3, 32, 32),
];

const TORCH: &str = r#"
import sys, time, torch
torch.set_num_threads(2)
b, ci, co, k, h, w = map(int, sys.argv[1:7])
x = torch.randn(b, ci, h, w, requires_grad=ci > 1)
wt = torch.randn(co, ci, k, k, requires_grad=True)
def step():
    torch.nn.functional.conv2d(x, wt, padding=k // 2).sum().backward()
step()
best = min(__import__('timeit').repeat(step, number=1, repeat=3))
print(best)
"#;

/// Best of three forward + backward passes, in seconds.
fn time(
    conv: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    x: &Tensor,
    w: &Tensor,
) -> candle_core::Result<f64> {
    conv(x, w)?.sum_all()?.backward()?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        conv(x, w)?.sum_all()?.backward()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    println!("forward + backward, seconds (best of 3)");
    for (b, ci, co, k, h, w) in SHAPES {
        let data = Tensor::randn(0f32, 1., (b, ci, h, w), &dev)?;
        // Images need no gradient; feature maps inside a network do.
        let x = if ci == 1 {
            data
        } else {
            Var::from_tensor(&data)?.as_tensor().clone()
        };
        let wt = Var::from_tensor(&Tensor::randn(0f32, 0.1, (co, ci, k, k), &dev)?)?;
        let ours = time(|x, w| neureg::nn::conv::conv2d(x, w, 1, k / 2), &x, &wt)?;
        let candle = time(|x, w| x.conv2d(w, k / 2, 1, 1, 1), &x, &wt)?;
        let torch = Command::new("python3")
            .args(["-c", TORCH])
            .args([b, ci, co, k, h, w].map(|v| v.to_string()))
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            });
        let torch_text = match torch {
            Some(t) => format!("PyTorch {t:.4}; neureg / PyTorch {:.2}", ours / t),
            None => "PyTorch not available".into(),
        };
        println!(
            "{b} x {ci} x {h} x {w}, {co} kernels {k} x {k}: neureg {ours:.4}, candle {candle:.4} (candle / neureg {:.1}), {torch_text}",
            candle / ours
        );
    }
    Ok(())
}
