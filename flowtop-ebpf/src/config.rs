//! The one load-time global: a [`KernelConfig`] the loader writes into the object's
//! `.rodata` before loading (filters, modes, kernel struct offsets).
//!
//! Read one field at a time with [`config!`]: a volatile load of just that field, so
//! the compiler cannot fold the build-time zeros in, and the verifier sees a load at
//! a constant offset of a frozen map, which it treats as a known constant (pruning
//! the branches of unset filters).
use aya_ebpf::Global;
use flowtop_common::KernelConfig;

#[unsafe(no_mangle)]
static CONFIG: Global<KernelConfig> = Global::new(KernelConfig::UNSET);

/// The configuration's address (`Global` is `repr(transparent)`).
#[inline(always)]
pub fn as_ptr() -> *const KernelConfig {
    core::ptr::from_ref(&CONFIG).cast()
}

/// `config!(filter_tgid)`, `config!(offsets.skc_num)`: one field of [`CONFIG`].
macro_rules! config {
    ($($field:ident).+) => {{
        // Often expanded inside another `unsafe` block.
        #[allow(unused_unsafe)]
        // SAFETY: CONFIG is always initialised and never written by the programs.
        let value = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*$crate::config::as_ptr()).$($field).+))
        };
        value
    }};
}
pub(crate) use config;
