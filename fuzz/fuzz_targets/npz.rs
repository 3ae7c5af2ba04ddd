//! `.npz` archives (`--data FILE.npz`): the zip layer and every array in it.
#![no_main]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = common::scratch().join("in.npz");
    std::fs::write(&p, data).unwrap();
    common::load(p.clone(), None);
    let _ = fastfc::data::npy::read_x(&p);
});
