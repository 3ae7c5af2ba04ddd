//! One test per finding of the fuzz targets (`fuzz/`, scripts/fuzz.sh) and of the review of the
//! parsers that went with them: each input once panicked, aborted or allocated without bound, and
//! must now be a clear error (TESTING.md lists the runs).

use std::io::Write;
use std::path::Path;

use fastfc::data::{self, idx, DataOptions};

fn load(p: &Path) -> String {
    data::load(&DataOptions {
        data: Some(p.to_path_buf()),
        cache: false,
        ..DataOptions::default()
    })
    .unwrap_err()
    .to_string()
}

/// An `.npy` file of format `version` (1: 2-byte header length, 2: 4-byte) with header
/// `dict` (padded as numpy pads it) and then `body`.
fn npy(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let len_bytes = if version == 1 { 2 } else { 4 };
    let mut h = dict.to_string();
    while !(8 + len_bytes + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY".to_vec();
    b.extend_from_slice(&[version, 0]);
    if version == 1 {
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(body);
    b
}

/// Loads `b` as both arrays of a `.npy` folder; the error.
fn load_as_folder(b: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("x_train.npy"), b).unwrap();
    std::fs::write(tmp.path().join("y_train.npy"), b).unwrap();
    load(tmp.path())
}

/// IDX dimensions whose product overflows: a multiplication that wrapped let a 28-byte file
/// pass the length check with dims no buffer had.
#[test]
fn idx_dimensions_that_overflow_are_refused() {
    let mut b = idx::MAGIC_IDX3_U8.to_be_bytes().to_vec();
    for d in [u32::MAX, u32::MAX, 2] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(&[7; 12]);
    let e = idx::parse_u8(Path::new("big"), &b, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more data than any file holds"), "{e}");
}

/// An npy header for (0, 2^32, 2^32): no values, so the size check passes, but the row width
/// overflows.
#[test]
fn an_npy_row_width_that_overflows_is_refused() {
    let b = npy(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }",
        &[],
    );
    let e = load_as_folder(&b);
    assert!(e.contains("more values per row"), "{e}");
}

/// A header that claims far more data than the file holds is refused before anything is
/// allocated for it (a 200-byte file declaring 4·10^12 floats would abort on the allocation).
#[test]
fn an_npy_header_claiming_more_than_the_file_is_refused_before_allocating() {
    let b = npy(
        1,
        "{'descr': '<f4', 'fortran_order': True, 'shape': (1000000, 1000000), }",
        &[0; 64],
    );
    let e = load_as_folder(&b);
    assert!(
        e.contains("truncated: its header declares shape [1000000, 1000000]"),
        "{e}"
    );
    // The same inside an npz, whose entry says it inflates to 4 GB: bounded by what its
    // compressed bytes can inflate to.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bomb.npz");
    let f = std::fs::File::create(&p).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    z.start_file("x_train.npy", o).unwrap();
    z.write_all(&b).unwrap();
    z.start_file("y_train.npy", o).unwrap();
    z.write_all(&b).unwrap();
    z.finish().unwrap();
    let e = load(&p);
    assert!(
        e.contains("bomb.npz[x_train]") && e.contains("truncated"),
        "{e}"
    );
}

/// Fuzz finding (npy target, 2026-12-03): a format-3 `.npy` whose 4-byte header length says
/// 1.4 GB. npyz allocated a buffer of that size for the header before reading it (libFuzzer:
/// out-of-memory, malloc(1431212918)); the length is checked first now.
#[test]
fn an_npy_header_length_beyond_the_file_is_refused() {
    let e = load_as_folder(&fixture("fuzz-npy-huge-header.npy"));
    assert!(
        e.contains("x_train.npy") && e.contains("its header claims 1431212918 bytes"),
        "{e}"
    );
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Fuzz finding (npy target, 2026-12-03): a header of deeply nested brackets kept npyz's
/// backtracking header parser busy for minutes (a hang, not a crash; the fuzzer's input is
/// tests/fixtures/fuzz-npy-nested-header.npy); such headers are refused before it sees them,
/// as are headers longer than numpy's own 10,000-byte limit. The messages are fastfc's own:
/// the header never reached npyz's parser.
#[test]
fn an_npy_header_nested_deep_or_too_long_is_refused_at_once() {
    let e = load_as_folder(&fixture("fuzz-npy-nested-header.npy"));
    assert!(e.contains("its header nests 84 deep"), "{e}");
    let deep = format!(
        "{{'descr': '<f4', 'shape': {}1{}, }}",
        "([".repeat(200),
        "])".repeat(200)
    );
    let e = load_as_folder(&npy(2, &deep, &[0; 8]));
    assert!(e.contains("nests 401 deep"), "{e}");
    let long = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }}{}",
        " ".repeat(20_000)
    );
    let e = load_as_folder(&npy(2, &long, &[0; 8]));
    assert!(e.contains("numpy reads at most 10000"), "{e}");
}
