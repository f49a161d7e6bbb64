//! Probe families: what the kernel offers (`detect`), which family to use (`select`,
//! pure), and loading + attaching it (`load`). Nothing else in flowtop knows which
//! kernel hooks exist.
pub mod btf;
pub mod btf_offsets;
pub mod detect;
pub mod load;
pub mod select;

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
