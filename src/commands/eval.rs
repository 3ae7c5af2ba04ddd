//! `fastfc eval --model DIR`: re-scores a saved model on the validation and test splits of the
//! data it was trained on (reloaded from its config.json, or named by the data flags; other data
//! is refused, naming both).

use std::sync::Arc;

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, SplitId};
use crate::cli::EvalArgs;
use crate::error::{Error, Result};
use crate::model::TrialState;
use crate::results::model_io;

pub fn run(a: &EvalArgs) -> Result<()> {
    let (cfg, params) = model_io::load(&a.model)?;
    let what = format!("the model in {}", a.model.display());
    let data = match &cfg.data {
        Some(r) => super::load_recorded(&a.data, Some(r), &what)?,
        // A model of fastfc 0.1 (Fashion-MNIST only) records its image size alone.
        None => {
            let mut flags = a.data.clone();
            if !flags.given() {
                flags.image_size = Some(cfg.image_size);
            }
            super::load_recorded(&flags, None, &what)?
        }
    };
    let data = Arc::new(data);
    if data.dim() != cfg.inputs || data.n_classes() != cfg.classes {
        return Err(Error::file(
            &a.model,
            format!(
                "model expects {} inputs and {} classes; the data has {} and {}",
                cfg.inputs,
                cfg.classes,
                data.dim(),
                data.n_classes()
            ),
        ));
    }
    let spec = cfg.spec();
    let mut state = TrialState::init(&spec);
    state.params = params;
    let backend = CpuBackend::new(data.clone());
    let c = backend.load(vec![(spec, state)])?;
    let v = backend.evaluate(&c, SplitId::Val, &[true])?[0];
    let t = backend.evaluate(&c, SplitId::Test, &[true])?[0];
    println!(
        "model: hidden {:?} {} {} lr {} dropout {} ({}, {} classes)",
        cfg.hp.hidden,
        cfg.hp.activation,
        cfg.hp.optimizer,
        cfg.hp.learning_rate,
        cfg.hp.dropout,
        data.shape_label(),
        data.n_classes()
    );
    println!("val_loss {:.4}  val_accuracy {:.4}", v.loss, v.accuracy);
    println!("test_loss {:.4}  test_accuracy {:.4}", t.loss, t.accuracy);
    Ok(())
}
