//! The computing device: CPU, or a CUDA GPU when built with `--features cuda`.

use candle_core::Device;

use crate::error::{Error, Result};

/// Parses `cpu`, `cuda` or `cuda:N` and opens that device.
pub fn open(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.as_str() {
        "cuda" => 0,
        s => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                Error::Config(format!("unknown device {spec:?}: use cpu, cuda or cuda:N"))
            })?,
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Config(format!(
            "device {spec}: this neureg was built without CUDA (rebuild with --features cuda)"
        )));
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// The default device: the first CUDA GPU when built with CUDA and one is present, else the CPU.
pub fn default_device() -> Device {
    if candle_core::utils::cuda_is_available() {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    Device::Cpu
}

/// A short name for the status bar and logs.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("CPU ({} threads)", candle_core::utils::get_num_threads()),
        Device::Cuda(_) => "CUDA GPU".to_string(),
        Device::Metal(_) => "Metal GPU".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert!(matches!(open("cpu"), Ok(Device::Cpu)));
        assert!(open("tpu")
            .unwrap_err()
            .to_string()
            .contains("unknown device"));
        if !candle_core::utils::cuda_is_available() {
            assert!(open("cuda:0")
                .unwrap_err()
                .to_string()
                .contains("without CUDA"));
        }
    }
}
