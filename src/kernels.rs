//! The CUDA kernels as built by `build.rs` from `kernels/*.cu` with the CUDA 12 toolchain: the
//! PTX, one cubin per architecture, the kernel names and ptxas' register/spill report. Empty when
//! no toolchain was found at build time.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// True when this binary carries compiled kernels.
pub fn built() -> bool {
    !CUBINS.is_empty()
}

/// The module image for a device of compute capability `(major, minor)`: the cubin of the
/// highest architecture with the same major version and a minor version no higher (SASS runs on
/// later minors of its major), else the PTX, which the driver JIT-compiles (GPUs newer than the
/// cubins). None when the binary has no kernels or the device is older than sm_75.
pub fn image_for(capability: (i32, i32)) -> Option<Image> {
    select_image(CUBINS, PTX, capability)
}

/// [`image_for`] over any set of cubins and PTX (the rule, testable without built kernels).
pub fn select_image(
    cubins: &'static [(u32, &'static [u8])],
    ptx: &'static str,
    capability: (i32, i32),
) -> Option<Image> {
    if cubins.is_empty() {
        return None;
    }
    let (major, minor) = (capability.0 as u32, capability.1 as u32);
    let dev = major * 10 + minor;
    cubins
        .iter()
        .filter(|(sm, _)| sm / 10 == major && sm % 10 <= minor)
        .max_by_key(|(sm, _)| *sm)
        .map(|&(sm, bytes)| Image::Cubin(sm, bytes))
        .or_else(|| (dev >= 75).then_some(Image::Ptx(ptx)))
}

/// What a device is given to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// SASS for `sm_{0}`.
    Cubin(u32, &'static [u8]),
    /// compute_75 PTX, JIT-compiled by the driver.
    Ptx(&'static str),
}
