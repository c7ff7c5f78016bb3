//! Garbage collection of the data directory. Once a change that drops versions is durable (a
//! deploy past `keep_versions`, a deleted function or tenant), the component bytes and
//! artifacts that no kept version of any tenant, and no function being served, references are
//! deleted; so are the artifact directories of other engines. Runs under the writers' lock, so
//! no deploy can be between storing its bytes and journaling them; a failure is only logged
//! (the files stay and go with the next collection).

use std::collections::HashSet;

use super::{ControlPlane, Inner};

impl ControlPlane {
    /// Deletes what nothing references any more; returns how many files went.
    pub(super) fn collect_garbage(&self, inner: &Inner) -> usize {
        let mut kept: HashSet<&str> = inner.state.kept_versions().collect();
        // The config file's functions are served but never stored: keep their artifacts.
        for live in inner.live.values() {
            kept.extend(live.functions.values().map(|f| f.function.version.as_str()));
        }
        let mut removed = 0;
        let mut sweep = |what: &str,
                         listed: std::io::Result<Vec<String>>,
                         remove: &dyn Fn(&str) -> std::io::Result<()>| {
            let listed = match listed {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::warn!(error = %e, "listing {what} to collect garbage failed");
                    return;
                }
            };
            for sha256 in listed.iter().filter(|sha| !kept.contains(sha.as_str())) {
                match remove(sha256) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, version = sha256.as_str(), "removing unreferenced {what} failed")
                    }
                }
            }
        };
        sweep("components", self.components.list(), &|sha| {
            self.components.remove(sha)
        });
        let artifacts = self.loader.artifacts();
        sweep("artifacts", artifacts.list(), &|sha| artifacts.remove(sha));
        match artifacts.remove_other_engines() {
            Ok(engines) => removed += engines,
            Err(e) => tracing::warn!(error = %e, "removing other engines' artifacts failed"),
        }
        if removed > 0 {
            tracing::info!(removed, "removed files no kept version references");
        }
        removed
    }
}
