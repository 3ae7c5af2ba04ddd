//! A study's `journal.jsonl` (read on every `--resume`, `report` and export).
#![no_main]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = common::scratch().join("study");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("journal.jsonl"), data).unwrap();
    let _ = fastfc::results::journal::read(&dir);
    let _ = fastfc::results::journal::parse_checkpoint(data);
});
