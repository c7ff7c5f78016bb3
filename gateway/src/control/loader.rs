//! Turning component bytes into a servable [`Function`]: native code from the artifact cache
//! (compiling only what it lacks), linked into an image once per version and shared by every
//! function serving the same bytes.
//!
//! Sharing is by content: when many tenants deploy one build (a template, an SDK example), its
//! code is mapped once, its memory image is built once, and a pool slot one of them used is
//! reused by another without remapping. Images are held weakly, so one lives exactly as long
//! as some function serves it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::metrics::Metrics;
use crate::registry::Function;
use crate::runtime::{FunctionImage, LoadError, Runtime};
use crate::store::{ArtifactCache, ArtifactSource, content_hash};

/// The fewest remembered versions before dead ones are pruned.
const PRUNE_FLOOR: usize = 64;

/// Where a loaded function's image came from: `atoll_artifacts_total{source}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageSource {
    /// Another function already serves the same bytes: its image is shared.
    Shared,
    /// Loaded from the artifact cache, or compiled.
    Artifact(ArtifactSource),
}

impl ImageSource {
    fn as_str(self) -> &'static str {
        match self {
            ImageSource::Shared => "shared",
            ImageSource::Artifact(source) => source.as_str(),
        }
    }
}

/// Loads functions; cheap to clone, shared by the control plane's tasks.
#[derive(Clone)]
pub(super) struct Loader {
    runtime: Arc<Runtime>,
    artifacts: ArtifactCache,
    metrics: Metrics,
    images: Arc<Images>,
}

/// Images by version, held weakly.
#[derive(Default)]
struct Images {
    by_version: DashMap<String, Weak<FunctionImage>>,
    /// Prune dead entries once the map is this long (doubling, so pruning is amortized O(1)).
    prune_at: AtomicUsize,
}

impl Loader {
    /// The artifact cache it compiles into.
    pub(super) fn artifacts(&self) -> &ArtifactCache {
        &self.artifacts
    }

    pub(super) fn new(runtime: Arc<Runtime>, artifacts: ArtifactCache, metrics: Metrics) -> Loader {
        Loader {
            runtime,
            artifacts,
            metrics,
            images: Arc::new(Images {
                prune_at: AtomicUsize::new(PRUNE_FLOOR),
                ..Images::default()
            }),
        }
    }

    /// Loads `bytes` as function `name`: the image another function already serves for the
    /// same bytes, or one made from the artifact cache (compiling only when it lacks them).
    /// Returns it with the compile time (zero unless it compiled). Blocking.
    pub(super) fn load(&self, name: &str, bytes: &[u8]) -> Result<(Function, Duration), LoadError> {
        let started = Instant::now();
        let version = content_hash(bytes);
        let (image, source) = match self.images.get(&version) {
            Some(image) => (image, ImageSource::Shared),
            None => {
                let (component, source) = self
                    .artifacts
                    .load_or_compile(&self.runtime, &version, bytes)
                    .map_err(|e| match e.downcast::<LoadError>() {
                        Ok(load) => load,
                        Err(other) => LoadError::Compile(format!("{other:#}")),
                    })?;
                let image = Arc::new(self.runtime.prepare(&component)?);
                // Linked: what loading read from the artifact now lives in wasmtime's own
                // structures, so its pages go back to the kernel.
                crate::runtime::reclaim_artifact_pages(&component);
                self.images.remember(&version, &image);
                (image, ImageSource::Artifact(source))
            }
        };
        self.metrics
            .artifacts
            .with_label_values(&[source.as_str()])
            .inc();
        tracing::info!(
            function = name,
            version = version.as_str(),
            artifact = source.as_str(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "function loaded"
        );
        let compile = match source {
            ImageSource::Artifact(ArtifactSource::Compiled | ArtifactSource::Recompiled) => {
                started.elapsed()
            }
            _ => Duration::ZERO,
        };
        Ok((
            Function {
                name: name.to_owned(),
                version,
                image,
                config: Default::default(),
            },
            compile,
        ))
    }

    /// [`load`](Self::load) on a blocking thread, so compiling never stalls an async worker.
    pub(super) async fn load_blocking(
        &self,
        name: &str,
        bytes: bytes::Bytes,
    ) -> Result<(Function, Duration), LoadError> {
        let (loader, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || loader.load(&name, &bytes))
            .await
            .unwrap_or_else(|e| Err(LoadError::Compile(format!("the compile task failed: {e}"))))
    }

    /// How many versions have a live image (for tests).
    #[cfg(test)]
    fn live_images(&self) -> usize {
        self.images
            .by_version
            .iter()
            .filter(|e| e.value().strong_count() > 0)
            .count()
    }
}

impl Images {
    fn get(&self, version: &str) -> Option<Arc<FunctionImage>> {
        self.by_version.get(version)?.upgrade()
    }

    fn remember(&self, version: &str, image: &Arc<FunctionImage>) {
        self.by_version
            .insert(version.to_owned(), Arc::downgrade(image));
        let len = self.by_version.len();
        if len >= self.prune_at.load(Ordering::Relaxed) {
            self.by_version.retain(|_, image| image.strong_count() > 0);
            let next = (self.by_version.len() * 2).max(PRUNE_FLOOR);
            self.prune_at.store(next, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeSettings;

    fn loader() -> (Loader, tempfile::TempDir) {
        let runtime = Runtime::new(RuntimeSettings {
            total_instances: 4,
            ..RuntimeSettings::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactCache::new(dir.path(), runtime.engine());
        (Loader::new(runtime, artifacts, Metrics::new()), dir)
    }

    fn hello() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tenants/target/wasm32-wasip2/release/hello.wasm"
        );
        std::fs::read(path).expect("run `make tenants` first")
    }

    #[test]
    fn the_same_bytes_share_one_image_while_a_function_serves_it() {
        let (loader, _dir) = loader();
        let bytes = hello();
        let (first, compiled) = loader.load("a", &bytes).unwrap();
        assert!(compiled > Duration::ZERO, "the first load compiles");
        let (second, compiled) = loader.load("b", &bytes).unwrap();
        assert_eq!(compiled, Duration::ZERO);
        assert!(Arc::ptr_eq(&first.image, &second.image));
        assert_eq!(loader.live_images(), 1);
        let artifacts = loader.metrics.artifacts.clone();
        assert_eq!(artifacts.with_label_values(&["shared"]).get(), 1);
        assert_eq!(artifacts.with_label_values(&["compiled"]).get(), 1);

        // Once nothing serves it, the image goes; the next load maps the cached artifact.
        drop((first, second));
        assert_eq!(loader.live_images(), 0);
        let (third, compiled) = loader.load("c", &bytes).unwrap();
        assert_eq!(compiled, Duration::ZERO);
        assert_eq!(artifacts.with_label_values(&["cached"]).get(), 1);
        drop(third);
    }
}
