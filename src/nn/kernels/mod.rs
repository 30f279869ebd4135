//! The hand-written CPU kernels and the ops they back: convolution (with the shifted-view
//! gemm of large kernels), batch norm, the fused residual ReLU, ELU, the layer similarity of Eq. 9,
//! the sampled readout; candle's operations on every other device.

pub mod add_relu;
pub mod batch_norm;
pub mod conv;
pub(crate) mod cpu;
pub mod elu;
pub(crate) mod gemm;
pub mod layer_similarity;
pub mod sampled_readout;
