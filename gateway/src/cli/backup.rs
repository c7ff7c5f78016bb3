//! `atoll backup` takes a running gateway's backup through the admin API; `atoll restore` lays
//! one down as a new data directory, offline. The archive is
//! [`atoll_gateway::store::backup`]'s.

use std::path::{Path, PathBuf};

use atoll_gateway::store::backup::{self, MANIFEST, Manifest};

use super::Connection;
use super::client::AdminClient;

/// `atoll backup --out FILE`.
#[derive(Debug, clap::Args)]
pub struct Backup {
    /// Where to write the archive (a tar file); it appears only once complete.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    connection: Connection,
}

/// `atoll restore FILE --data-dir DIR`.
#[derive(Debug, clap::Args)]
pub struct Restore {
    /// The archive `atoll backup` wrote.
    file: PathBuf,
    /// The data directory to make: missing or empty. Point `data_dir` of a gateway at it.
    #[arg(long)]
    data_dir: PathBuf,
}

/// Downloads the backup into `--out`, through a temporary file beside it, and says what it
/// holds.
pub fn run_backup(request: &Backup) -> anyhow::Result<()> {
    let client = AdminClient::new(&request.connection)?;
    let partial = request.out.with_extension("partial");
    let written = (|| {
        let mut file = std::fs::File::create(&partial)?;
        let written = client.download("/v1/admin/backup", &mut file)?;
        file.sync_all()?;
        anyhow::Ok(written)
    })();
    let manifest = written.and_then(|written| {
        let manifest = manifest_of(&partial)?;
        std::fs::rename(&partial, &request.out)?;
        anyhow::Ok((written, manifest))
    });
    let (written, manifest) = match manifest {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("backup failed"));
        }
    };
    println!(
        "backup of {} tenants, {} components and {} key-value keys written to {} ({written} bytes)",
        manifest.tenants,
        manifest.components.len(),
        manifest.kv_keys,
        request.out.display()
    );
    Ok(())
}

/// The manifest of the archive at `path`; an error when it has none (cut short).
fn manifest_of(path: &Path) -> anyhow::Result<Manifest> {
    let mut archive = tar::Archive::new(std::fs::File::open(path)?);
    let mut manifest = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == MANIFEST {
            manifest = Some(serde_json::from_reader(&mut entry)?);
        }
    }
    manifest.ok_or_else(|| {
        anyhow::anyhow!("the archive the gateway sent has no manifest: it was cut short")
    })
}

/// Restores `--data-dir` from the archive and says what it holds.
pub fn run_restore(request: &Restore) -> anyhow::Result<()> {
    let file = std::fs::File::open(&request.file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", request.file.display()))?;
    let restored = backup::restore(std::io::BufReader::new(file), &request.data_dir)
        .map_err(|e| anyhow::anyhow!("restoring {}: {e}", request.file.display()))?;
    println!(
        "restored {} tenants, {} components and {} key-value keys (taken by atoll {}) into {}; set data_dir to it and start the gateway",
        restored.manifest.tenants,
        restored.manifest.components.len(),
        restored.manifest.kv_keys,
        restored.manifest.atoll,
        request.data_dir.display()
    );
    Ok(())
}
