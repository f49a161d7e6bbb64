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

/// Families in the order `--probe auto` tries them: the stable tracepoints first
/// (one hook for every socket call, cheapest per event), then the function hooks.
pub const AUTO_ORDER: [Family; 3] = [Family::Tracepoint, Family::Fentry, Family::Kprobe];

/// A family and the program kinds to try for it, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub family: Family,
    pub kinds: Vec<ProgramKind>,
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
    pub btf: Result<(), String>,
    pub sock_tracepoints: Result<(), String>,
}

impl From<&KernelFacts> for Facts {
    fn from(k: &KernelFacts) -> Self {
        Facts {
            btf: k.offsets.as_ref().map(|_| ()).map_err(Clone::clone),
            sock_tracepoints: k.sock_tracepoints.clone(),
        }
    }
}

/// Candidates to try in order; `Err` when none can work, with a reason for each.
pub fn plan(request: ProbeRequest, facts: &Facts) -> Result<Vec<Candidate>, NoProbe> {
    let families: &[Family] = match request {
        ProbeRequest::Auto => &AUTO_ORDER,
        ProbeRequest::Tracepoint => &[Family::Tracepoint],
        ProbeRequest::Fentry => &[Family::Fentry],
        ProbeRequest::Kprobe => &[Family::Kprobe],
    };
    let mut out = Vec::new();
    let mut no = NoProbe::default();
    for &family in families {
        match kinds_for(family, facts) {
            Ok(kinds) => out.push(Candidate { family, kinds }),
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
                // tp_btf and raw_tp read family/protocol from `struct sock` at BTF offsets.
                Ok(()) => vec![ProgramKind::TpBtf, ProgramKind::RawTp, ProgramKind::Classic],
                // Without BTF only the classic record (which carries them) works.
                Err(_) => vec![ProgramKind::Classic],
            })
        }
        Family::Fentry | Family::Kprobe => Err("not supported yet".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(btf: bool, tp: bool) -> Facts {
        Facts {
            btf: if btf { Ok(()) } else { Err("no BTF".into()) },
            sock_tracepoints: if tp {
                Ok(())
            } else {
                Err("no tracepoints".into())
            },
        }
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
        let err = plan(ProbeRequest::Auto, &facts(true, false)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tracepoint: no tracepoints"), "{msg}");
        assert!(msg.contains("fentry: "), "{msg}");
        assert!(msg.contains("kprobe: "), "{msg}");
    }

    #[test]
    fn forced_family_reports_only_itself() {
        let err = plan(ProbeRequest::Kprobe, &facts(true, true)).unwrap_err();
        assert_eq!(err.reasons.len(), 1);
        assert_eq!(err.reasons[0].0, Family::Kprobe);
    }
}
