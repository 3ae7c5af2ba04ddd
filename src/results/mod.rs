//! What a run leaves on disk: models (safetensors, PyTorch layout), configs and metrics as JSON,
//! and a study's journal, checkpoints and tables.

pub mod export;
pub mod journal;
pub mod model_io;
pub mod nonfinite;
pub mod optuna;
pub mod postgres;
