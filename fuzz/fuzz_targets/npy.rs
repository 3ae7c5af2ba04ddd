//! `.npy` arrays (a `--data` folder): the input as the features beside good labels, and as the
//! labels beside good features.
#![no_main]
mod common;

/// A valid float32 (10, 2) array and int64 (10,) labels, as numpy writes them.
fn good(x: bool) -> Vec<u8> {
    let (descr, shape, body): (&str, &str, Vec<u8>) = if x {
        ("<f4", "(10, 2)", (0..20).flat_map(|i| (i as f32).to_le_bytes()).collect())
    } else {
        ("<i8", "(10,)", (0..10).flat_map(|i| ((i % 2) as i64).to_le_bytes()).collect())
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&body);
    b
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let d = common::scratch();
    for as_x in [true, false] {
        let dir = d.join(if as_x { "x" } else { "y" });
        std::fs::create_dir_all(&dir).unwrap();
        let (xb, yb) = if as_x {
            (data.to_vec(), good(false))
        } else {
            (good(true), data.to_vec())
        };
        std::fs::write(dir.join("x_train.npy"), xb).unwrap();
        std::fs::write(dir.join("y_train.npy"), yb).unwrap();
        common::load(dir, None);
    }
});
