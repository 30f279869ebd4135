use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use neureg::nn::batch_norm::BnMode;
use neureg::nn::resnet::{Depth, ResNet, ResNetConfig};
use neureg::nn::seeded_init::seeded_var_builder;
use neureg::nn::sgd::Sgd;
use neureg::train::similarity_loss::{atanh_clamped, similarity_loss};
fn main() -> neureg::Result<()> {
    let width: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(0.25);
    let steps: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(20);
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 0, &dev);
    let config = ResNetConfig {
        depth: Depth::Resnet18,
        width,
        classes: 10,
        taps: Depth::Resnet18.default_taps(),
    };
    let net = ResNet::new(&config, vb.clone())?;
    let theta = vb.get_with_hints(5, "theta", candle_nn::Init::Const(0.0))?;
    let vars = neureg::nn::named_vars(&varmap);
    let mut sgd = Sgd::new(vars, 0.01, 0.9, 5e-4, vec![]);
    let x = Tensor::randn(0f32, 1., (64, 1, 32, 32), &dev)?;
    let y = Tensor::zeros(64, candle_core::DType::U32, &dev)?;
    let sx = Tensor::randn(0f32, 1., (64, 1, 36, 64), &dev)?;
    let t = atanh_clamped(&((Tensor::rand(0f32, 1., (64, 64), &dev)? * 1.8)? - 0.9)?)?;
    let start = std::time::Instant::now();
    for _ in 0..steps {
        let logits = net.forward(&x, BnMode::Train, true)?.logits.unwrap();
        let mut loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let taps = net.forward(&sx, BnMode::BatchOnly, false)?.taps;
        loss = (loss + (similarity_loss(&taps, &theta, &t)?.loss * 20.0)?)?;
        sgd.apply(&loss.backward()?)?;
    }
    println!(
        "{:.1} img/s",
        (steps * 64) as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
