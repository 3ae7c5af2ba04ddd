//! `fastfc data info | export`.

use crate::cli::DataCommand;
use crate::data;
use crate::error::{Error, Result};

pub fn run(c: DataCommand) -> Result<()> {
    match c {
        DataCommand::Info(a) => {
            let d = super::load_data(&a.data, a.seed)?;
            let r = d.record();
            println!("source      {}", d.origin);
            println!(
                "shape       {} ({} features), {} classes",
                d.shape_label(),
                d.dim(),
                d.n_classes()
            );
            println!("scaling     {} (fitted on the training split)", r.scale);
            println!("split       {}", d.split);
            println!(
                "rows        train {} / val {} / test {} (test: scored once, for a chosen model)",
                d.train.len(),
                d.val.len(),
                d.test.len()
            );
            println!("checksum    crc32 {}", r.crc32);
            println!("\nclass counts (train / val / test):");
            let k = d.n_classes();
            let (a, b, t) = (
                d.train.class_counts(k),
                d.val.class_counts(k),
                d.test.class_counts(k),
            );
            for (i, name) in d.classes.iter().enumerate() {
                println!("  {i:>3} {name:<12} {:>7} {:>7} {:>7}", a[i], b[i], t[i]);
            }
            Ok(())
        }
        DataCommand::Export { data: a, out } => {
            let d = super::load_data(&a.data, a.seed)?;
            let ydt = data::npy::export(&d, &out)?;
            println!(
                "wrote {}/{{train,val,test}}_{{x,y}}.npy (x float32 [N, {}], y {ydt} [N]) and classes.txt",
                out.display(),
                d.dim()
            );
            Ok(())
        }
        DataCommand::PackEmbedded { data_dir, out } => {
            let files = data::find_files(&data_dir)?.ok_or_else(|| {
                Error::flag(
                    "--data-dir",
                    format!("{}: no Fashion-MNIST files", data_dir.display()),
                )
            })?;
            let full = data::preprocess_files(&files, data::embedded::IMAGE_SIZE)?;
            data::embedded::pack(&full, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}
