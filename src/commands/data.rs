//! `fastfc data info | export`.

use crate::cli::DataCommand;
use crate::data::{self, CLASS_NAMES};
use crate::error::{Error, Result};

pub fn run(c: DataCommand) -> Result<()> {
    match c {
        DataCommand::Info(a) => {
            let d = super::load_data(&a)?;
            println!("source      {}", d.origin);
            println!(
                "image size  {}x{} ({} features, pixels in [0, 1])",
                d.image_size,
                d.image_size,
                d.dim()
            );
            println!("split       rows    source indices");
            println!(
                "train       {:<7} training file 0..{}",
                d.train.len(),
                data::N_TRAIN
            );
            println!(
                "val         {:<7} training file {}..{}",
                d.val.len(),
                data::N_TRAIN,
                data::N_TRAIN + data::N_VAL
            );
            println!(
                "test        {:<7} t10k file (scored once, for a chosen model)",
                d.test.len()
            );
            println!("\nclass counts (train / val / test):");
            let (a, b, t) = (
                d.train.class_counts(),
                d.val.class_counts(),
                d.test.class_counts(),
            );
            for k in 0..CLASS_NAMES.len() {
                println!(
                    "  {k} {:<12} {:>6} {:>6} {:>6}",
                    CLASS_NAMES[k], a[k], b[k], t[k]
                );
            }
            Ok(())
        }
        DataCommand::Export { data: a, out } => {
            let d = super::load_data(&a)?;
            data::npy::export(&d, &out)?;
            println!(
                "wrote {}/{{train,val,test}}_{{x,y}}.npy (x float32 [N, {}], y uint8 [N])",
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
