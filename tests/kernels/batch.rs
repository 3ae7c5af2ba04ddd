//! batch_gather: rows and labels picked by an epoch order, as the CPU's workspace gathers them.

use fastfc::backend::cuda::launch::BatchGather;
use fastfc::backend::cuda::Gpu;

use crate::each_gpu;

#[test]
fn batch_gather_picks_the_ordered_rows() {
    let (n, dim) = (300usize, 64usize);
    let x = crate::common::nonzero(n * dim, 1);
    let y: Vec<u32> = (0..n).map(|i| (i * 7 % 10) as u32).collect();
    let order = fastfc::data::batches::epoch_order(5, 2, n);
    for (start, rows) in [(0usize, 32usize), (288, 12), (17, 1)] {
        each_gpu(|g| {
            let (xb, yb, ob) = (
                g.upload(&x).unwrap(),
                g.upload(&y).unwrap(),
                g.upload(&order).unwrap(),
            );
            let dx = g.upload(&vec![f32::NAN; 32 * dim]).unwrap();
            let dy = g.upload(&[u32::MAX; 32]).unwrap();
            let k = BatchGather {
                idx: ob.at(start),
                rows: rows as i32,
                dim: dim as i32,
                src_x: xb.ptr(),
                src_y: yb.ptr(),
                dst_x: dx.ptr(),
                dst_y: dy.ptr(),
            };
            g.launch(&k.launch(1)).unwrap();
            let (gx, gy) = (g.read(&dx).unwrap(), g.read(&dy).unwrap());
            for r in 0..32 {
                if r < rows {
                    let src = order[start + r] as usize;
                    assert_eq!(
                        &gx[r * dim..(r + 1) * dim],
                        &x[src * dim..(src + 1) * dim],
                        "row {r}"
                    );
                    assert_eq!(gy[r], y[src], "label {r}");
                } else {
                    assert!(
                        gx[r * dim..(r + 1) * dim].iter().all(|v| v.is_nan()),
                        "row {r} past the batch written"
                    );
                    assert_eq!(gy[r], u32::MAX);
                }
            }
        });
    }
}
