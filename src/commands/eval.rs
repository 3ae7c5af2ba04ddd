//! `fastfc eval --model DIR`: re-scores a saved model on the validation and test splits.

use std::sync::Arc;

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, SplitId};
use crate::cli::{DataArgs, EvalArgs};
use crate::error::{Error, Result};
use crate::model::TrialState;
use crate::results::model_io;

pub fn run(a: &EvalArgs) -> Result<()> {
    let (cfg, params) = model_io::load(&a.model)?;
    let data = Arc::new(super::load_data(&DataArgs {
        image_size: cfg.image_size,
        data_dir: a.data_dir.clone(),
        no_cache: false,
    })?);
    if data.dim() != cfg.inputs {
        return Err(Error::file(
            &a.model,
            format!(
                "model expects {} inputs; the data has {}",
                cfg.inputs,
                data.dim()
            ),
        ));
    }
    let spec = cfg.spec();
    let mut state = TrialState::init(&spec);
    state.params = params;
    let backend = CpuBackend::new(data);
    let c = backend.load(vec![(spec, state)])?;
    let v = backend.evaluate(&c, SplitId::Val, &[true])?[0];
    let t = backend.evaluate(&c, SplitId::Test, &[true])?[0];
    println!(
        "model: hidden {:?} {} {} lr {} dropout {} ({}x{} input)",
        cfg.hp.hidden,
        cfg.hp.activation,
        cfg.hp.optimizer,
        cfg.hp.learning_rate,
        cfg.hp.dropout,
        cfg.image_size,
        cfg.image_size
    );
    println!("val_loss {:.4}  val_accuracy {:.4}", v.loss, v.accuracy);
    println!("test_loss {:.4}  test_accuracy {:.4}", t.loss, t.accuracy);
    Ok(())
}
