//! The networks: the ResNet with its taps and the Blur layer, torchvision's VGG16/19, the
//! predictive model of docs/method.md section 6 (core, readouts, its data).

pub mod blur;
pub mod factorized_readout;
pub mod gaussian_readout;
pub mod predictor;
pub mod predictor_data;
pub mod readout_weights;
pub mod resnet;
pub mod stacked_core;
pub mod vgg;
