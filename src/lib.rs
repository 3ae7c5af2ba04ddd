//! fastfc: hyperparameter search for small fully-connected networks.
//!
//! Data flow: `data` (IDX → leak-free splits) → `model` + `cohort` (trials packed together) →
//! `backend` (cpu | cuda) → `train` (epochs, validation, early stopping) → `strategy` (random,
//! grid, hyperband) → `results` / `report`.

pub mod backend;
pub mod data;
pub mod error;
pub mod model;
pub mod results;
pub mod rng;
pub mod schedule;
pub mod train;

pub use error::{Error, Result};
pub mod cli;
pub mod commands;
pub mod device;
pub mod kernels;
pub mod profile;
pub mod progress;
pub mod report;
pub mod search;
pub mod space;
pub mod strategy;
pub mod study;
pub mod worker;
