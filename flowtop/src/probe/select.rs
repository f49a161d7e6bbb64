//! Chooses the probe family: a pure function from what the user asked and what the
//! kernel offers to a plan, or to the list of reasons why nothing fits.
use std::fmt;

use super::{detect::KernelFacts, Family, ProgramKind};

/// What the user asked for with `--probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeRequest {
    Auto,
    Tracepoint,
    Fentry,
    Kprobe,
}

/// Families in the order `--probe auto` tries them, cheapest and most robust first:
/// the stable tracepoints (one tp_btf hook per socket call, a direct call from the
/// kernel), then fexit (a BPF trampoline per function, also a direct call, but on
/// internal functions that can change), then kprobes (an int3/ftrace trap per call
/// plus a second one on return, and a map round trip to carry the arguments over).
pub const AUTO_ORDER: [Family; 3] = [Family::Tracepoint, Family::Fentry, Family::Kprobe];

/// `--probe auto`'s order on a kernel that preempts kernel code (full or lazy
/// preemption, PREEMPT_RT) and has the sock tracepoints (6.3+). There a fexit
/// program, and from 7.0 on a tp_btf program too, runs preemptible, and the kernel
/// skips it on that CPU until the preempted run resumes: bytes go uncounted (only
/// reported). The tracepoint family is therefore loaded as the classic tracepoint
/// program there (`PREEMPTIBLE_TRACEPOINT_KINDS`), which perf runs with preemption
/// disabled: exact in Debian's 7.2 under full preemption with 16 sending threads,
/// where tp_btf lost a quarter of the bytes. kprobe handlers cannot be preempted
/// either, and flowtop's kretprobes get the kernel's maximum of return slots
/// (`retprobe.rs`): also exact there, but two programs and a map round trip per call
/// (1934 ns of program time per call against the classic tracepoint's 1179 in the
/// same 7.2 guest, TCG), and on internal functions rather than a stable tracepoint.
/// Without the sock tracepoints (6.1 and older) auto keeps its usual order: on 6.1
/// under full preemption the kprobe family lost 0.9% of the bytes without any count
/// flowtop could report, while fentry reports every call the kernel skipped.
pub const PREEMPTIBLE_AUTO_ORDER: [Family; 3] =
    [Family::Tracepoint, Family::Kprobe, Family::Fentry];

/// The tracepoint family's program kinds, best first, on a kernel that preempts
/// kernel code. Since 7.0 (Debian's 7.2 has it) a tracepoint calls its callbacks under
/// SRCU instead of with preemption disabled, so tp_btf and raw_tp programs run
/// preemptible (migration disabled only), and the kernel skips such a program on a CPU
/// for every other call there while one of its runs is preempted (the per-program
/// recursion guard): seen as whole senders going uncounted in Debian's 7.2 at its
/// default lazy preemption. Perf's tracepoint callback, which runs the classic
/// (`BPF_PROG_TYPE_TRACEPOINT`) program, disables preemption itself
/// (`guard(preempt_notrace)` in `include/trace/perf.h`), so that program cannot be
/// preempted. Its remaining guard is the per-CPU `bpf_prog_active`, which other BPF
/// work holds only briefly (kprobe programs cannot be preempted; a map syscall can,
/// which is why flowtop's map reads run at SCHED_FIFO, `collect/realtime.rs`); the
/// kernel counts those skips per program, and flowtop reports them. The classic kind
/// costs more per call (perf builds the trace record first) and needs tracefs; before
/// 7.0 the tp_btf program already ran with preemption disabled, where the classic
/// kind gains nothing but is still exact.
pub const PREEMPTIBLE_TRACEPOINT_KINDS: [ProgramKind; 3] =
    [ProgramKind::Classic, ProgramKind::TpBtf, ProgramKind::RawTp];

/// A family and the program kinds to try for it, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub family: Family,
    pub kinds: Vec<ProgramKind>,
    /// Optional kernel functions to hook as well, because this kernel has them
    /// (e.g. `inet_sendpage` before 6.5). Only for the fentry and kprobe families.
    pub extra_hooks: Vec<&'static str>,
}

/// Why no probe could be used: one reason per family tried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoProbe {
    pub reasons: Vec<(Family, String)>,
}

impl fmt::Display for NoProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no usable probe: ")?;
        for (i, (family, why)) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{family}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoProbe {}

/// The facts `plan` needs, separate from detection so it can be tested without root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Kernel BTF readable and the `struct sock` offsets found in it.
    pub btf: Result<(), String>,
    pub sock_tracepoints: Result<(), String>,
    pub fentry: Result<(), String>,
    pub kprobes: Result<(), String>,
    pub optional_hooks: Vec<&'static str>,
    /// How the kernel preempts kernel code, when it does.
    pub preemption: Option<String>,
}

impl From<&KernelFacts> for Facts {
    fn from(k: &KernelFacts) -> Self {
        Facts {
            btf: k.offsets.as_ref().map(|_| ()).map_err(Clone::clone),
            sock_tracepoints: k.sock_tracepoints.clone(),
            fentry: k.fentry.clone(),
            kprobes: k.kprobes.clone(),
            optional_hooks: k.optional_hooks.clone(),
            preemption: k.preemption.clone(),
        }
    }
}

/// Candidates to try in order; `Err` when none can work, with a reason for each.
pub fn plan(request: ProbeRequest, facts: &Facts) -> Result<Vec<Candidate>, NoProbe> {
    let families: &[Family] = match request {
        ProbeRequest::Auto if facts.preemption.is_some() && facts.sock_tracepoints.is_ok() => {
            log::info!(
                "this kernel preempts kernel code ({}): trying the classic tracepoint \
                 program first, then kprobes, whose programs cannot be preempted and \
                 skipped",
                facts.preemption.as_deref().unwrap_or_default()
            );
            &PREEMPTIBLE_AUTO_ORDER
        }
        ProbeRequest::Auto => &AUTO_ORDER,
        ProbeRequest::Tracepoint => &[Family::Tracepoint],
        ProbeRequest::Fentry => &[Family::Fentry],
        ProbeRequest::Kprobe => &[Family::Kprobe],
    };
    let mut out = Vec::new();
    let mut no = NoProbe::default();
    for &family in families {
        match kinds_for(family, facts) {
            Ok(kinds) => out.push(Candidate {
                family,
                kinds,
                extra_hooks: match family {
                    Family::Tracepoint => Vec::new(),
                    Family::Fentry | Family::Kprobe => facts.optional_hooks.clone(),
                },
            }),
            Err(why) => no.reasons.push((family, why)),
        }
    }
    if out.is_empty() {
        return Err(no);
    }
    for (family, why) in &no.reasons {
        log::info!("skipping probe family {family}: {why}");
    }
    Ok(out)
}

fn kinds_for(family: Family, facts: &Facts) -> Result<Vec<ProgramKind>, String> {
    match family {
        Family::Tracepoint => {
            facts.sock_tracepoints.clone()?;
            Ok(match facts.btf {
                // Where the kernel preempts kernel code, the classic tracepoint first:
                // see `PREEMPTIBLE_TRACEPOINT_KINDS`.
                Ok(()) if facts.preemption.is_some() => PREEMPTIBLE_TRACEPOINT_KINDS.to_vec(),
                // tp_btf and raw_tp read family/protocol from `struct sock` at BTF offsets.
                Ok(()) => vec![ProgramKind::TpBtf, ProgramKind::RawTp, ProgramKind::Classic],
                // Without BTF only the classic record (which carries them) works.
                Err(_) => vec![ProgramKind::Classic],
            })
        }
        // Both read `socket->sk` and `sk->sk_family` at offsets from the kernel's BTF.
        Family::Fentry => {
            facts
                .btf
                .clone()
                .map_err(|e| format!("needs kernel BTF: {e}"))?;
            facts.fentry.clone()?;
            Ok(vec![ProgramKind::Fexit])
        }
        Family::Kprobe => {
            facts.kprobes.clone()?;
            facts
                .btf
                .clone()
                .map_err(|e| format!("needs kernel BTF for struct offsets: {e}"))?;
            Ok(vec![ProgramKind::Kprobe])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_or(yes: bool, why: &str) -> Result<(), String> {
        if yes {
            Ok(())
        } else {
            Err(why.to_string())
        }
    }

    /// A kernel with everything but the given tracepoints/BTF (like Debian's 6.12).
    fn facts(btf: bool, tp: bool) -> Facts {
        Facts {
            btf: ok_or(btf, "no BTF"),
            sock_tracepoints: ok_or(tp, "no tracepoints"),
            fentry: ok_or(btf, "no BTF"),
            kprobes: Ok(()),
            optional_hooks: Vec::new(),
            preemption: None,
        }
    }

    fn families(plan: &[Candidate]) -> Vec<Family> {
        plan.iter().map(|c| c.family).collect()
    }

    #[test]
    fn auto_prefers_tp_btf_when_kernel_has_btf() {
        let plan = plan(ProbeRequest::Auto, &facts(true, true)).unwrap();
        assert_eq!(plan[0].family, Family::Tracepoint);
        assert_eq!(plan[0].kinds[0], ProgramKind::TpBtf);
    }

    #[test]
    fn without_btf_only_classic_tracepoint_remains() {
        let plan = plan(ProbeRequest::Tracepoint, &facts(false, true)).unwrap();
        assert_eq!(plan[0].kinds, vec![ProgramKind::Classic]);
    }

    #[test]
    fn no_probe_names_every_family_and_its_reason() {
        let mut f = facts(true, false);
        f.fentry = Err("no trampolines".into());
        f.kprobes = Err("no kprobes".into());
        let err = plan(ProbeRequest::Auto, &f).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tracepoint: no tracepoints"), "{msg}");
        assert!(msg.contains("fentry: no trampolines"), "{msg}");
        assert!(msg.contains("kprobe: no kprobes"), "{msg}");
    }

    #[test]
    fn forced_family_reports_only_itself() {
        let mut f = facts(true, true);
        f.kprobes = Err("kprobes not available (CONFIG_KPROBES off)".into());
        let err = plan(ProbeRequest::Kprobe, &f).unwrap_err();
        assert_eq!(err.reasons.len(), 1);
        assert_eq!(err.reasons[0].0, Family::Kprobe);
        assert!(err.to_string().contains("CONFIG_KPROBES off"), "{err}");
    }

    #[test]
    fn auto_orders_families_by_cost() {
        let plan = plan(ProbeRequest::Auto, &facts(true, true)).unwrap();
        assert_eq!(
            families(&plan),
            [Family::Tracepoint, Family::Fentry, Family::Kprobe]
        );
        assert_eq!(plan[1].kinds, [ProgramKind::Fexit]);
        assert_eq!(plan[2].kinds, [ProgramKind::Kprobe]);
    }

    /// Debian 6.1: no sock tracepoints, fexit and kprobes, inet_sendpage present.
    #[test]
    fn old_kernel_auto_starts_with_fentry_and_hooks_sendpage() {
        let mut f = facts(true, false);
        f.optional_hooks = vec!["inet_sendpage"];
        let plan = plan(ProbeRequest::Auto, &f).unwrap();
        assert_eq!(families(&plan), [Family::Fentry, Family::Kprobe]);
        assert!(plan.iter().all(|c| c.extra_hooks == ["inet_sendpage"]));
        let err = super::plan(ProbeRequest::Tracepoint, &f).unwrap_err();
        assert!(err.to_string().contains("no tracepoints"), "{err}");
    }

    /// This development machine: tracepoints only, no kprobes; fentry is refused only
    /// when attaching, so it stays in the plan (load reports the refusal).
    #[test]
    fn kernel_without_kprobes_keeps_the_others() {
        let mut f = facts(true, true);
        f.kprobes = Err("kprobes not available".into());
        let plan = plan(ProbeRequest::Auto, &f).unwrap();
        assert_eq!(families(&plan), [Family::Tracepoint, Family::Fentry]);
        assert!(plan[0].extra_hooks.is_empty());
    }

    /// Debian's 7.2 boots with lazy preemption: auto starts with the tracepoint
    /// family as the classic program, then kprobes, fentry last.
    #[test]
    fn preempting_kernel_auto_puts_fentry_last() {
        let mut f = facts(true, true);
        f.preemption = Some("preemption mode lazy".into());
        let p = plan(ProbeRequest::Auto, &f).unwrap();
        assert_eq!(
            families(&p),
            [Family::Tracepoint, Family::Kprobe, Family::Fentry]
        );
        assert_eq!(p[0].kinds[0], ProgramKind::Classic);
        f.kprobes = Err("kprobes not available".into());
        let p = plan(ProbeRequest::Auto, &f).unwrap();
        assert_eq!(families(&p), [Family::Tracepoint, Family::Fentry]);
        let p = plan(ProbeRequest::Fentry, &f).unwrap();
        assert_eq!(families(&p), [Family::Fentry]);
    }

    /// Debian's 7.2 at its default lazy preemption: tp_btf programs run preemptible
    /// there, perf's classic tracepoint program does not, so it is tried first.
    #[test]
    fn preempting_kernel_tries_the_classic_tracepoint_first() {
        let mut f = facts(true, true);
        f.preemption = Some("preemption mode lazy".into());
        let p = plan(ProbeRequest::Tracepoint, &f).unwrap();
        assert_eq!(
            p[0].kinds,
            [ProgramKind::Classic, ProgramKind::TpBtf, ProgramKind::RawTp]
        );
        f.preemption = None;
        let p = plan(ProbeRequest::Tracepoint, &f).unwrap();
        assert_eq!(p[0].kinds[0], ProgramKind::TpBtf);
    }

    /// Debian's 6.1 under `preempt=full`: kprobes lost bytes silently there, fentry
    /// reports its skipped calls, so auto keeps its usual order.
    #[test]
    fn preempting_kernel_without_sock_tracepoints_keeps_fentry_first() {
        let mut f = facts(true, false);
        f.preemption = Some("preemption mode full".into());
        let p = plan(ProbeRequest::Auto, &f).unwrap();
        assert_eq!(families(&p), [Family::Fentry, Family::Kprobe]);
    }

    #[test]
    fn function_families_need_btf() {
        let f = facts(false, true);
        let err = plan(ProbeRequest::Fentry, &f).unwrap_err();
        assert!(err.to_string().contains("needs kernel BTF"), "{err}");
        let err = plan(ProbeRequest::Kprobe, &f).unwrap_err();
        assert!(err.to_string().contains("needs kernel BTF"), "{err}");
    }
}
