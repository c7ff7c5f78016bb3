//! Replays the seed corpora of the `cargo fuzz` targets (`fuzz/corpus/<target>/`), and what
//! fuzzing found since (kept there), through the targets' own code: a short, deterministic
//! stand-in for `make fuzz` in every `make test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        inputs += 1;
    }
    assert!(inputs > 0, "a seed corpus for {target}");
}

#[test]
fn the_config_parser_corpus_replays() {
    replay("config", atoll_gateway::fuzz_targets::config);
}

#[test]
fn the_path_corpus_replays() {
    replay("path", atoll_gateway::fuzz_targets::path);
}

#[test]
fn the_admin_bodies_corpus_replays() {
    replay("admin_bodies", atoll_gateway::fuzz_targets::admin_bodies);
}

#[test]
fn the_cache_control_corpus_replays() {
    replay("cache_control", atoll_gateway::fuzz_targets::cache_control);
}
