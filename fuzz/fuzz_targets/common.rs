// Shared by the fuzz targets: a private scratch folder per process (on tmpfs when there is one),
// where each input is written as the file a user would hand fastfc.
use std::path::PathBuf;

pub fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("fastfc-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Loads `path` as `--data` would (no cache); the result is ignored: only a panic, an abort or
/// a runaway allocation is a finding.
pub fn load(path: PathBuf, label: Option<&str>) {
    let o = fastfc::data::DataOptions {
        data: Some(path),
        label: label.map(str::to_string),
        cache: false,
        ..Default::default()
    };
    let _ = fastfc::data::load(&o);
}
