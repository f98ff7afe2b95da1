//! Replays every committed seed in `fuzz/corpus/<target>/` through its fuzz entry point, so a
//! plain `cargo test` proves the seeds never panic.

use std::path::PathBuf;

#[test]
fn replay_fuzz_corpora() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in smart_core::fuzzing::TARGETS {
        let dir = root.join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "corpus {name} is empty");
        for path in entries {
            let data = std::fs::read(&path).unwrap();
            target(&data);
        }
    }
}
