//! The cache of precompiled artifacts.
//!
//! Precompiled artifacts live at `artifacts/<engine>/<sha256>.cwasm`, where `<engine>` is a hash
//! of the engine's compatibility settings (wasmtime version, target, compiler flags) and
//! `<sha256>` the component's content hash. A restart loads them by mmap in well under a
//! millisecond instead of compiling again. Native code is only mapped once its bytes match the
//! sha256 written beside it (`<sha256>.cwasm.sha256`) when it was compiled: an artifact that
//! does not match (a flipped byte anywhere, a missing digest) or no longer loads (an engine
//! change) is recompiled from the component bytes, never trusted.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::write_atomic;
use crate::runtime::Runtime;

/// Where a function's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactSource {
    /// Loaded from a precompiled artifact on disk: no compilation.
    Cached,
    /// Compiled now (no artifact yet) and written to the cache.
    Compiled,
    /// An artifact was there but did not load (stale or corrupt); recompiled and replaced.
    Recompiled,
}

/// The on-disk cache of precompiled components for one engine.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactSource {
    /// The `source` label of `atoll_artifacts_total`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ArtifactSource::Cached => "cached",
            ArtifactSource::Compiled => "compiled",
            ArtifactSource::Recompiled => "recompiled",
        }
    }
}

impl ArtifactCache {
    /// The cache for `engine` under `data_dir/artifacts/`.
    pub fn new(data_dir: &Path, engine: &Engine) -> ArtifactCache {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        ArtifactCache {
            dir: data_dir.join("artifacts").join(engine_key),
        }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm"))
    }

    /// The sha256 of every component with an artifact for this engine.
    pub fn list(&self) -> std::io::Result<Vec<String>> {
        super::list_named(&self.dir, ".cwasm")
    }

    /// Removes the artifact of component `sha256` and its digest. A function serving it keeps
    /// its mapping; only a later load would compile again.
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        for path in [self.path_for(sha256), self.digest_path_for(sha256)] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the artifact directories of other engines (an older wasmtime, other compiler
    /// settings): this engine can never load them. Returns how many went.
    pub fn remove_other_engines(&self) -> std::io::Result<usize> {
        let (Some(parent), Some(mine)) = (self.dir.parent(), self.dir.file_name()) else {
            return Ok(0);
        };
        let entries = match std::fs::read_dir(parent) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            if entry.file_name() != mine && entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn digest_path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm.sha256"))
    }

    /// Loads the component whose bytes are `bytes` (and whose hash is `sha256`) from its artifact,
    /// or compiles it and stores the artifact. Blocking and possibly slow: call it off the
    /// request path.
    pub fn load_or_compile(
        &self,
        runtime: &Runtime,
        sha256: &str,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, ArtifactSource)> {
        let path = self.path_for(sha256);
        let digest_path = self.digest_path_for(sha256);
        let mut source = ArtifactSource::Compiled;
        if path.exists() {
            let loaded =
                verify(&path, &digest_path).and_then(|()| load_artifact(runtime.engine(), &path));
            match loaded {
                Ok(component) => return Ok((component, ArtifactSource::Cached)),
                Err(e) => {
                    tracing::warn!(
                        artifact = %path.display(),
                        error = %format!("{e:#}"),
                        "precompiled artifact did not load; recompiling from the component bytes"
                    );
                    source = ArtifactSource::Recompiled;
                }
            }
        }
        let compiled = runtime.precompile(bytes)?;
        // The digest first: an artifact is never there without the digest it must match.
        write_atomic(&digest_path, super::content_hash(&compiled).as_bytes())
            .with_context(|| format!("writing {}", digest_path.display()))?;
        write_atomic(&path, &compiled)
            .with_context(|| format!("writing artifact {}", path.display()))?;
        let component = load_artifact(runtime.engine(), &path)?;
        Ok((component, source))
    }
}

/// Checks that the artifact at `path` is, byte for byte, the one whose sha256 was written to
/// `digest_path` when it was compiled.
fn verify(path: &Path, digest_path: &Path) -> anyhow::Result<()> {
    let expected = std::fs::read_to_string(digest_path)
        .with_context(|| format!("reading {}", digest_path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        super::content_hash(&bytes) == expected.trim(),
        "artifact {} does not match its sha256: it changed since it was compiled",
        path.display()
    );
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "wasmtime requires `unsafe` to load native code from disk"
)]
fn load_artifact(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: artifacts are only ever written by `ArtifactCache::load_or_compile` from
    // `Engine::precompile_component`, into the gateway's own (0700) data directory, through an
    // atomic rename, and are loaded only after their bytes matched the digest written when they
    // were compiled (`verify`); wasmtime checks the header and the engine compatibility too.
    unsafe { Component::deserialize_file(engine, path) }
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("loading artifact {}", path.display()))
}
