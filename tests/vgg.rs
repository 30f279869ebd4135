//! neureg's VGG19 against PyTorch's: a randomly initialised torchvision VGG19 cut after conv3_1
//! (`tests/fixtures`, made by `scripts/vgg_fixture.py`), the same images, conv3_1 features
//! equal within 1e-4; and the Feature control trained towards that layer's similarity.

mod common;

use candle_core::Tensor;
use neureg::data::npy::{read_f32, read_file};
use neureg::nn::models::vgg::Vgg;

fn fixture(name: &str) -> std::path::PathBuf {
    common::root().join("tests/fixtures").join(name)
}

fn npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    let a = read_f32(&read_file(&fixture(name)).unwrap(), name).unwrap();
    (a.shape, a.data)
}

#[test]
fn conv3_1_features_equal_pytorchs() {
    let dev = common::device();
    let (vgg, _) = Vgg::load(&fixture("vgg19_to_conv3_1.safetensors"), "conv3_1", &dev).unwrap();
    assert_eq!(vgg.layer_name(), "conv3_1");
    let (shape, images) = npy("vgg19_images.npy");
    let x = Tensor::from_vec(images, shape.as_slice(), &dev).unwrap();
    let ours = vgg.features(&x).unwrap();
    let (want_shape, want) = npy("vgg19_conv3_1.npy");
    assert_eq!(ours.dims(), want_shape.as_slice());
    let ours = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
    let worst = ours
        .iter()
        .zip(&want)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "largest difference {worst} (scale {scale})"
    );
}

#[test]
fn every_conv_layer_is_read_in_one_pass() {
    let dev = common::device();
    let path = fixture("vgg19_to_conv3_1.safetensors");
    let all = Vgg::load_all(&path, &dev).unwrap();
    assert_eq!(all.conv_layers(), 5);
    assert_eq!(all.block_starts(), [1, 3, 5]);
    let (shape, images) = npy("vgg19_images.npy");
    let x = Tensor::from_vec(images, shape.as_slice(), &dev).unwrap();
    let acts = all.conv_activations(&x, &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(acts.len(), 5);
    let channels: Vec<usize> = acts.iter().map(|a| a.dim(1).unwrap()).collect();
    assert_eq!(channels, [64, 64, 128, 128, 256]);
    // The last equals the chosen layer's features; after a ReLU nothing is negative.
    for (layer, a) in ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
        .iter()
        .zip(&acts)
    {
        let (one, _) = Vgg::load(&path, layer, &dev).unwrap();
        let want = one.features(&x).unwrap();
        assert_eq!(max_abs_diff(a, &want), 0.0, "{layer}");
        assert!(a.min_all().unwrap().to_scalar::<f32>().unwrap() >= 0.0);
    }
    let e = all.conv_activations(&x, &[6]).err().unwrap().to_string();
    assert!(e.contains("beyond") && e.contains('5'), "{e}");
    // The first layer's kernels as they act on gray images: away from the border, conv1_1
    // (before its ReLU) of an image less that of a black image is the image convolved with them.
    let gray = all.gray_stem_kernels().unwrap();
    assert_eq!(gray.dims(), [64, 3, 3]);
    let (raw, _) = Vgg::load(&path, "features.0", &dev).unwrap();
    let x = x.narrow(0, 0, 1).unwrap();
    let lhs =
        (raw.features(&x).unwrap() - raw.features(&x.zeros_like().unwrap()).unwrap()).unwrap();
    let rhs = x.conv2d(&gray.unsqueeze(1).unwrap(), 1, 1, 1, 1).unwrap();
    let (_, _, h, w) = lhs.dims4().unwrap();
    let inner = |t: &Tensor| t.narrow(2, 1, h - 2).unwrap().narrow(3, 1, w - 2).unwrap();
    let diff = max_abs_diff(&inner(&lhs), &inner(&rhs));
    assert!(diff < 1e-4, "largest difference {diff}");
}

/// The largest absolute difference of two tensors of one shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn a_layer_the_file_does_not_reach_is_named() {
    let dev = common::device();
    let e = Vgg::load(&fixture("vgg19_to_conv3_1.safetensors"), "conv4_1", &dev)
        .err()
        .expect("conv4_1 is beyond the file")
        .to_string();
    assert!(
        e.contains("vgg19_to_conv3_1.safetensors") && e.contains("features.12"),
        "{e}"
    );
    let e = Vgg::load(&fixture("vgg19_to_conv3_1.safetensors"), "conv9_9", &dev)
        .err()
        .expect("no such layer")
        .to_string();
    assert!(e.contains("conv9_9"), "{e}");
}

#[test]
fn the_feature_control_trains_towards_a_vgg_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feature-vgg");
    let target = fixture("vgg19_to_conv3_1.safetensors");
    let data = common::root().join("sample_data/fashion-mnist");
    let (target, data, out_text) = (
        target.display().to_string(),
        data.display().to_string(),
        out.display().to_string(),
    );
    let mut args = vec![
        "train",
        "--condition",
        "feature",
        "--target",
        target.as_str(),
        "--feature-layer",
        "conv3_1",
        "--data",
        data.as_str(),
        "--train-limit",
        "64",
        "--test-limit",
        "32",
        "--out",
        out_text.as_str(),
    ];
    args.extend(common::TINY_RUN);
    let text = common::ok(&args);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"finished\""), "{text}\n{metrics}");
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(
        config.contains("\"feature_layer\": \"conv3_1\""),
        "{config}"
    );
}
