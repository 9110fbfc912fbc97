//! Opening the devices of a run from `--backend`, `--devices`, `--threads` and `--batch`.

use std::sync::Arc;

use bystack_kernels::backend::{open_backend_with, BackendError, BackendOptions};

use crate::device::Device;

/// Nonces per search call on a GPU whose backend reports no batch size: a full launch of the
/// batch the H200 sweep chose (bench/results/h200-2026-11-28).
const GPU_MIN_CHUNK: usize = 2048;

/// Opens the devices to mine on.
///
/// * `auto`: a CUDA backend on each listed GPU when this build and machine have one, else the
///   best CPU kernel (a CUDA device that fails to open falls back to the CPU with a warning);
/// * a GPU backend (`cuda…`, `wgpu…`): one device per index in `devices` (default `[0]`);
/// * anything else (a CPU backend, `reference`, `float`): one device with `threads` workers.
///
/// # Errors
/// The kernels' [`BackendError`] for an unknown or unsupported backend.
pub fn open_devices(
    backend: &str,
    devices: &[usize],
    threads: usize,
    batch: usize,
) -> Result<Vec<Device>, BackendError> {
    if backend == "auto" {
        // Opening CUDA checks for the driver and NVRTC first and fails cleanly without them.
        match open_each("cuda", devices, threads, batch) {
            Ok(opened) => return Ok(opened),
            Err(e) => tracing::info!("no CUDA device ({e}); mining on the CPU"),
        }
        return open_each("auto", &[], threads, batch);
    }
    let gpu = backend.starts_with("cuda") || backend.starts_with("wgpu");
    open_each(backend, if gpu { devices } else { &[] }, threads, batch)
}

fn open_each(
    backend: &str,
    devices: &[usize],
    threads: usize,
    batch: usize,
) -> Result<Vec<Device>, BackendError> {
    let indices: Vec<Option<usize>> = if devices.is_empty() {
        vec![None]
    } else {
        devices.iter().copied().map(Some).collect()
    };
    indices
        .into_iter()
        .map(|index| {
            let opened = open_backend_with(
                backend,
                &BackendOptions {
                    threads,
                    batch,
                    device: index.unwrap_or(0),
                },
            )?;
            let info = opened.info();
            let gpu = backend.starts_with("cuda") || backend.starts_with("wgpu");
            let chunk = if batch > 0 {
                batch
            } else if gpu {
                info.parallelism.max(GPU_MIN_CHUNK)
            } else {
                2 * info.parallelism.max(1)
            } as u64;
            let name = match index {
                Some(i) => format!("{}:{i}", info.name),
                None => info.name,
            };
            Ok(Device {
                name,
                backend: Arc::from(opened),
                chunk,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_backends_open_one_device_and_unknown_names_are_errors() {
        let d = open_devices("reference", &[3], 1, 0).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "reference");
        assert!(!open_devices("auto", &[], 1, 0).unwrap().is_empty());
        assert!(matches!(
            open_devices("quantum", &[], 1, 0),
            Err(BackendError::Unknown { .. })
        ));
    }
}
