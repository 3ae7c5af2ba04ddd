//! Random search: `trials` distinct configurations drawn from the space (all drawn up front from
//! the seed), each trained for `epochs` with early stopping.

use std::collections::HashSet;

use rand::SeedableRng;

use super::{config_key, FixedRuns};
use crate::error::{Error, Result};
use crate::rng::{derive_seed, stream};
use crate::space::SearchSpace;

pub fn new(space: &SearchSpace, trials: usize, epochs: usize, seed: u64) -> Result<FixedRuns> {
    if trials == 0 {
        return Err(Error::flag("--trials", "0: expected at least 1"));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, stream::PROPOSE, 0));
    let mut seen = HashSet::new();
    let mut configs = vec![];
    let mut misses = 0;
    while configs.len() < trials {
        let hp = space.sample(&mut rng);
        if seen.insert(config_key(&hp)) {
            configs.push(hp);
            misses = 0;
        } else {
            misses += 1;
            if misses > 10_000 {
                return Err(Error::flag(
                    "--trials",
                    format!(
                        "{trials}: the search space has only {} distinct configurations",
                        configs.len()
                    ),
                ));
            }
        }
    }
    Ok(FixedRuns::new("random", configs, epochs))
}
