//! What a run leaves on disk: models (safetensors, PyTorch layout), configs and metrics as JSON.
//! Study files (journal, CSV, summary) live beside them in `journal.rs` / `export.rs`.

pub mod model_io;
