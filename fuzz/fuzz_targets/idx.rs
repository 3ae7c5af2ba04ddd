//! IDX files (MNIST-family sets): the parser for labels and images, and a whole set whose
//! training images are the input (beside good labels and test files).
#![no_main]
mod common;

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("in");
    let _ = fastfc::data::idx::parse_u8(p, data, 1);
    let _ = fastfc::data::idx::parse_u8(p, data, 3);
    let dir = common::scratch().join("set");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), data).unwrap();
    let labels: Vec<u8> = (0..12).map(|i| i % 3).collect();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(0x801, &[12], &labels)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(0x803, &[3, 4, 4], &[9; 48])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(0x801, &[3], &[0, 1, 2])).unwrap();
    common::load(dir, None);
});
