//! The standard scenarios, `atoll-loadtest scenario NAME`. Each starts what it measures itself
//! (the `atoll` binary on ephemeral loopback ports, and for `hello` its peers), drives bounded
//! load, prints a Markdown table and writes a JSON report and SVG charts to its `--out` folder.
//!
//! - [`hello`]: one function through Atoll next to nginx and `wasmtime serve`, same run;
//! - [`density`]: N tenants deployed, Zipf traffic across them, for several N;
//! - [`noisy`]: a tenant's latency alone and next to a neighbour burning its CPU budget;
//! - [`deploys`]: a tenant's latency alone and while its function is redeployed under load.

pub mod density;
pub mod deploys;
pub mod hello;
pub mod noisy;
mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context as _;

pub use self::progress::Progress;
use crate::driver::{self, Load, Outcome};

/// The options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The `atoll` binary to start.
    #[arg(long, default_value = "target/release/atoll")]
    pub atoll: PathBuf,
    /// The component served (and, for `hello`, run by `wasmtime serve` too).
    #[arg(
        long,
        default_value = "tenants/target/wasm32-wasip2/release/hello.wasm"
    )]
    pub wasm: PathBuf,
    /// Pin the servers to CPU 0 and this process to CPU 1, so figures are per core.
    #[arg(long)]
    pub pin: bool,
    /// Where the JSON and the charts go.
    #[arg(long, default_value = "loadtest-results")]
    pub out: PathBuf,
}

impl Common {
    /// Reads the component, pins this process when asked and creates the output folder.
    pub fn prepare(&self) -> anyhow::Result<(Vec<u8>, Output)> {
        let wasm = std::fs::read(&self.wasm)
            .with_context(|| format!("reading {}", self.wasm.display()))?;
        if self.pin {
            pin_self(1)?;
        }
        Ok((wasm, Output::create(&self.out)?))
    }

    /// The CPU the servers go on: 0 when pinned.
    pub fn server_cpu(&self) -> Option<usize> {
        self.pin.then_some(0)
    }
}

/// The folder a scenario writes its report and charts to.
#[derive(Debug, Clone)]
pub struct Output {
    dir: PathBuf,
}

impl Output {
    /// `dir`, created when missing.
    pub fn create(dir: &Path) -> anyhow::Result<Output> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Output {
            dir: dir.to_owned(),
        })
    }

    /// Writes `text` to the file `name` in the folder.
    pub fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Pins this process to `cpu` (Linux `taskset`), so the load tester and the server never share
/// one.
pub fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-pc", &cpu.to_string(), &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset could not pin the load tester");
    Ok(())
}

/// A single-threaded runtime: the load tester uses one core.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `load` with a progress bar for its duration.
pub async fn drive_with_progress(mut load: Load) -> anyhow::Result<Outcome> {
    let answered = Arc::new(AtomicU64::new(0));
    load.answered = answered.clone();
    let _progress = Progress::show(load.bounds.duration, answered);
    driver::run(load).await
}

/// `wasm` with a custom section holding `n` appended: the same code under a new content hash,
/// so deploying it is a new version that compiles from scratch.
pub fn variant(wasm: &[u8], n: u64) -> Vec<u8> {
    const NAME: &[u8] = b"atoll-loadtest-variant";
    let payload = n.to_le_bytes();
    let mut section = Vec::new();
    leb128(&mut section, NAME.len() as u64);
    section.extend_from_slice(NAME);
    section.extend_from_slice(&payload);
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    leb128(&mut bytes, section.len() as u64);
    bytes.extend_from_slice(&section);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_append_one_custom_section_and_differ_by_number() {
        let base = b"\0asm\x0d\x00\x01\x00".to_vec();
        let one = variant(&base, 1);
        let two = variant(&base, 2);
        assert!(one.starts_with(&base));
        assert_ne!(one, two);
        let section = &one[base.len()..];
        assert_eq!(section[0], 0, "a custom section");
        assert_eq!(section[1] as usize, section.len() - 2, "its size");
        assert_eq!(section[2] as usize, "atoll-loadtest-variant".len());
        assert_eq!(&section[3..25], b"atoll-loadtest-variant");
        assert_eq!(&section[25..], 1u64.to_le_bytes());
    }

    #[test]
    fn leb128_encodes_multi_byte_values() {
        let mut out = Vec::new();
        leb128(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
    }
}
