//! CSV tables (`--data FILE.csv`, with the default label column and with `--label y`).
#![no_main]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = common::scratch().join("in.csv");
    std::fs::write(&p, data).unwrap();
    common::load(p.clone(), None);
    common::load(p, Some("y"));
});
