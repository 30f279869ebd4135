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

/// The devices this build can use: `cpu`, then `cuda:N` for each GPU found (looked for once).
pub fn available() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut list = vec!["cpu".to_string()];
        if candle_core::utils::cuda_is_available() {
            list.extend(
                (0..16).map_while(|i| Device::new_cuda(i).ok().map(|_| format!("cuda:{i}"))),
            );
        }
        list
    })
}

/// The name [`open`] takes for `device`: `cpu` or `cuda:N`.
pub fn spec(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// A short name for the status bar and logs.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("CPU ({} threads)", candle_core::utils::get_num_threads()),
        Device::Cuda(_) => format!("CUDA GPU ({})", spec(device)),
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
