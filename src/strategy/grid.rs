//! Grid search: the cartesian product of the space's values (continuous parameters need `count`
//! or `step`), each trained for `epochs`; `limit` keeps the first N points.

use super::FixedRuns;
use crate::error::{Error, Result};
use crate::space::SearchSpace;

pub fn new(
    space: &SearchSpace,
    space_path: &std::path::Path,
    epochs: usize,
    limit: Option<usize>,
) -> Result<FixedRuns> {
    let mut points = space.grid(space_path)?;
    if let Some(n) = limit {
        if n == 0 {
            return Err(Error::flag("--trials", "0: expected at least 1"));
        }
        points.truncate(n);
    }
    Ok(FixedRuns::new("grid", points, epochs))
}
