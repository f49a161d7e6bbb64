//! Expectations, verdicts and the comparison of ground truth with flowtop's rows.
use std::fmt;

use crate::{FlowtopRun, Truth};

/// What flowtop must report for one PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Role in the scenario, for messages ("sender", "sink").
    pub role: String,
    pub pid: u32,
    /// Every row of this PID must carry this name (None: not checked).
    pub comm: Option<String>,
    /// The process renamed itself from this name to `comm` while moving bytes:
    /// rows up to the rename may carry it, every later row must carry `comm`.
    pub renamed_from: Option<String>,
    pub rx: u64,
    pub tx: u64,
}

impl Expect {
    pub fn from_truth(role: &str, t: &Truth) -> Expect {
        Expect {
            role: role.into(),
            pid: t.pid,
            comm: Some(t.comm.clone()),
            renamed_from: None,
            rx: t.rx_bytes,
            tx: t.tx_bytes,
        }
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// It could not run on this machine (the reason is the result's `detail`), so it
    /// proved nothing: never counted as a pass.
    Skip,
}

/// One scenario's verdict.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub expected: String,
    pub reported: String,
    pub verdict: Verdict,
    /// Why it failed, and flowtop's stderr; for a skip, why it could not run.
    pub detail: String,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    pub(crate) fn error(name: &str, e: &anyhow::Error) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            expected: "-".into(),
            reported: format!("error: {}", one_line(&format!("{e:#}"))),
            verdict: Verdict::Fail,
            detail: format!("{e:#}"),
        }
    }

    pub(crate) fn skip(name: &str, reason: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            expected: String::new(),
            reported: String::new(),
            verdict: Verdict::Skip,
            detail: reason.into(),
        }
    }

    /// PASS when `why` is empty, else FAIL with the reasons and flowtop's stderr.
    pub(crate) fn judged(
        name: &str,
        expected: &[String],
        reported: &[String],
        why: &[String],
        run: &FlowtopRun,
    ) -> ScenarioResult {
        let pass = why.is_empty();
        ScenarioResult {
            name: name.into(),
            expected: expected.join(";"),
            reported: reported.join(";"),
            verdict: if pass { Verdict::Pass } else { Verdict::Fail },
            detail: if pass {
                String::new()
            } else {
                format!("{}\nflowtop stderr:\n{}", why.join("\n"), run.stderr)
            },
        }
    }

    /// Turns a PASS into a FAIL for `why` (a check on top of [`check`]'s).
    pub(crate) fn fail(&mut self, why: &str) {
        self.verdict = Verdict::Fail;
        self.detail.push('\n');
        self.detail.push_str(why);
    }
}

/// `SCENARIO <name> PASS|FAIL expected=.. reported=..`, or
/// `SCENARIO <name> SKIP reason=..` (the reason is the rest of the line).
impl fmt::Display for ScenarioResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verdict {
            Verdict::Skip => write!(
                f,
                "SCENARIO {} SKIP reason={}",
                self.name,
                one_line(&self.detail)
            ),
            Verdict::Pass | Verdict::Fail => write!(
                f,
                "SCENARIO {} {} expected={} reported={}",
                self.name,
                if self.passed() { "PASS" } else { "FAIL" },
                self.expected,
                self.reported
            ),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn describe(role: &str, pid: u32, comm: &str, rx: u64, tx: u64) -> String {
    format!("{role}[{pid},{comm}]:rx={rx},tx={tx}")
}

/// Compares `expects` with `run`. `only_pids`: no other PID may appear at all.
pub fn check(
    name: &str,
    expects: &[Expect],
    run: &FlowtopRun,
    only_pids: Option<&[u32]>,
) -> ScenarioResult {
    let mut expected = Vec::new();
    let mut reported = Vec::new();
    let mut why = run.problems();
    for e in expects {
        let r = run.reported(e.pid);
        let comm = e.comm.as_deref().unwrap_or("*");
        expected.push(describe(&e.role, e.pid, comm, e.rx, e.tx));
        reported.push(describe(&e.role, e.pid, &r.comms.join("|"), r.rx, r.tx));
        if (r.rx, r.tx) != (e.rx, e.tx) {
            why.push(format!(
                "{} pid {}: expected rx={} tx={}, flowtop reported rx={} tx={}",
                e.role, e.pid, e.rx, e.tx, r.rx, r.tx
            ));
        }
        if let Some(c) = &e.comm {
            // Names in order of appearance: [comm], or [renamed_from, comm].
            let allowed = match &e.renamed_from {
                Some(old) => r.comms == [c.clone()] || r.comms == [old.clone(), c.clone()],
                None => r.comms.iter().all(|rc| rc == c),
            };
            if !allowed {
                why.push(format!(
                    "{} pid {}: expected comm {c:?}, rows carry {:?}",
                    e.role, e.pid, r.comms
                ));
            }
        }
        why.extend(
            r.inconsistencies
                .iter()
                .map(|i| format!("{} pid {}: {i}", e.role, e.pid)),
        );
    }
    if let Some(only) = only_pids {
        let others: Vec<u32> = run
            .pids()
            .into_iter()
            .filter(|p| !only.contains(p))
            .collect();
        let list: Vec<String> = only.iter().map(u32::to_string).collect();
        expected.push(format!("only_pids={}", list.join(",")));
        reported.push(format!("other_pids={others:?}"));
        if !others.is_empty() {
            why.push(format!(
                "filtered to PIDs {only:?}, yet rows for other PIDs {others:?}"
            ));
        }
    }
    ScenarioResult::judged(name, &expected, &reported, &why, run)
}

/// For `#[test]`s: panics with the verdict, the reasons and flowtop's stderr. A SKIP
/// (this machine cannot run the scenario) panics too, with what is missing: on the
/// host `cargo test` has no skipped state, and a test that did not run proved nothing.
/// (The VM matrix prints and counts SKIPs through `flowtop-scenarios` instead.)
pub fn assert_pass(r: &ScenarioResult) {
    eprintln!("{r}");
    assert!(
        r.verdict != Verdict::Skip,
        "{}: cannot run on this machine, which the host tests require: {}",
        r.name,
        r.detail
    );
    assert!(r.passed(), "{r}\n{}", r.detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scenario this machine cannot run fails the host test, with the reason; the
    /// VM runner's line for it still says SKIP (and is counted there).
    #[test]
    #[should_panic(
        expected = "cannot run on this machine, which the host tests require: no cgroup2"
    )]
    fn a_skip_fails_a_host_test() {
        let r = ScenarioResult::skip("cgroup_filter", "no cgroup2 file system mounted");
        assert_eq!(
            r.to_string(),
            "SCENARIO cgroup_filter SKIP reason=no cgroup2 file system mounted"
        );
        assert_pass(&r);
    }
}
