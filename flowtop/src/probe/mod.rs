//! Probe families: what the kernel offers (`detect`), which family to use (`select`,
//! pure), and loading + attaching it (`load`). Nothing else in flowtop knows which
//! kernel hooks exist.
pub mod btf;
pub mod btf_offsets;
pub mod detect;
pub mod exit_reclaim;
pub mod load;
pub mod misses;
pub mod preempt;
pub mod retprobe;
pub mod select;
pub mod udp_peer;

use std::fmt;

/// A family of kernel hooks that can feed the accounting function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// `sock:sock_{send,recv}_length` (kernel 6.3+): one hook for every socket call.
    Tracepoint,
    /// fexit programs on the inet send/receive functions (BTF trampolines).
    Fentry,
    /// kprobes + kretprobes on the same functions.
    Kprobe,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Tracepoint => "tracepoint",
            Family::Fentry => "fentry",
            Family::Kprobe => "kprobe",
        })
    }
}

/// How one family's programs are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// `tp_btf`: BTF-typed tracepoint, cheapest, needs kernel BTF.
    TpBtf,
    /// `raw_tp`: raw tracepoint, needs no tracefs.
    RawTp,
    /// Classic tracepoint: needs tracefs, needs no BTF.
    Classic,
    /// fexit: BPF trampoline on a kernel function, sees arguments and return value.
    Fexit,
    /// kprobe on entry + kretprobe on return.
    Kprobe,
}

/// Environment variable (undocumented, for benchmarks and debugging) that restricts
/// attaching to one program kind: `tp_btf`, `raw_tp` or `tracepoint`.
pub const PROGRAM_KIND_ENV: &str = "FLOWTOP_PROGRAM_KIND";

impl ProgramKind {
    pub const ALL: [ProgramKind; 3] =
        [ProgramKind::TpBtf, ProgramKind::RawTp, ProgramKind::Classic];

    /// The kind named by its `Display` form.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.to_string() == name)
    }

    /// The kind forced with [`PROGRAM_KIND_ENV`], if set to a known name.
    pub fn forced() -> Option<Self> {
        let name = std::env::var(PROGRAM_KIND_ENV).ok()?;
        let kind = Self::from_name(&name);
        if kind.is_none() {
            log::warn!("ignoring {PROGRAM_KIND_ENV}={name}: expected tp_btf, raw_tp or tracepoint");
        }
        kind
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgramKind::TpBtf => "tp_btf",
            ProgramKind::RawTp => "raw_tp",
            ProgramKind::Classic => "tracepoint",
            ProgramKind::Fexit => "fexit",
            ProgramKind::Kprobe => "kprobe",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_kinds_round_trip_through_their_names() {
        for k in ProgramKind::ALL {
            assert_eq!(ProgramKind::from_name(&k.to_string()), Some(k));
        }
        assert_eq!(ProgramKind::from_name("kprobe"), None);
    }
}
