//! Judges one boot's `VMTEST` lines and renders the kernel x family table. The host
//! decides every cell itself; the guest's verdict line (its own checks: auto's choice,
//! absent families, preemption) must be `success` and appear once.
use std::fmt::Write as _;

use super::{Console, KernelSpec};

/// One `SCENARIO <name> PASS|FAIL expected=.. reported=..` or
/// `SCENARIO <name> SKIP reason=..` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub pass: bool,
    pub expected: String,
    pub reported: String,
    /// A SKIP's reason: the guest could not run it, so it proved nothing and the cell
    /// fails (the guests are set up for every scenario).
    pub skipped: Option<String>,
    /// A FAIL where flowtop reported that the kernel skipped its programs (a family
    /// in the spec's `preempted` list, on a kernel that boots preempting kernel
    /// code): bytes were lost, but not silently.
    pub loss_reported: bool,
}

/// One kernel x family cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// The family must work: its scenarios ran.
    Ran {
        scenarios: Vec<Scenario>,
        /// Scenarios of `flowtop_tests::all_scenario_names` the cell did not report.
        missing: Vec<String>,
        rc: Option<i32>,
        /// For `auto`: the family it attached, and the one it had to.
        chose: Option<(String, String)>,
    },
    /// The kernel lacks the family: flowtop had to fail cleanly.
    Absent {
        rc: Option<i32>,
        clean: bool,
        msg: String,
    },
}

impl Cell {
    pub fn passed(&self) -> bool {
        match self {
            Cell::Ran {
                scenarios,
                missing,
                rc,
                chose,
            } => {
                let lossy = scenarios.iter().any(|s| s.loss_reported);
                !scenarios.is_empty()
                    && missing.is_empty()
                    && scenarios.iter().all(|s| s.pass || s.loss_reported)
                    && (*rc == Some(0) || (lossy && *rc == Some(1)))
                    && chose.as_ref().is_none_or(|(got, want)| got == want)
            }
            Cell::Absent { rc, clean, .. } => *rc == Some(1) && *clean,
        }
    }

    /// Table text: `PASS 12/12, 4194304 B = 4194304 B` etc.
    fn summary(&self) -> String {
        match self {
            Cell::Ran {
                scenarios,
                missing,
                chose,
                ..
            } => {
                let ok = scenarios.iter().filter(|s| s.pass).count();
                let sum = |f: fn(&Scenario) -> &str| -> u64 {
                    scenarios.iter().map(|s| byte_total(f(s))).sum()
                };
                let (exp, rep) = (sum(|s| &s.expected), sum(|s| &s.reported));
                let verdict = if self.passed() { "PASS" } else { "FAIL" };
                let chose = match chose {
                    Some((got, _)) => format!(" (chose {got})"),
                    None => String::new(),
                };
                let skipped = match scenarios.iter().filter(|s| s.skipped.is_some()).count() {
                    0 => String::new(),
                    n => format!(" ({n} skipped)"),
                };
                let skipped = match scenarios.iter().filter(|s| s.loss_reported).count() {
                    0 => skipped,
                    n => format!("{skipped} ({n} with skipped calls reported)"),
                };
                let rel = if exp == rep { "=" } else { "≠" };
                format!(
                    "{verdict}{chose} {ok}/{}{skipped}, expected {exp} B {rel} reported {rep} B",
                    scenarios.len() + missing.len()
                )
            }
            Cell::Absent { rc, .. } => {
                let rc = rc.map_or("none".to_string(), |r| r.to_string());
                if self.passed() {
                    format!("not supported: fails cleanly (exit {rc})")
                } else {
                    format!("FAIL: not supported, but exit {rc} / not clean")
                }
            }
        }
    }
}

pub struct KernelRun {
    pub label: String,
    pub package: String,
    pub release: Option<String>,
    /// (family, cell) in the order of the table's columns; missing cells are failures.
    pub cells: Vec<(String, Option<Cell>)>,
    pub verdicts: Vec<String>,
    /// (family, `ns_per_call=.. runs=.. run_ns=..`) from the guest's cost
    /// measurement: informational, never a failure.
    pub costs: Vec<(String, String)>,
    /// (family, `PASS|FAIL expected_tx=.. reported_tx=.. start_warning=..
    /// skipped_calls=..`) from the guest's check under full preemption.
    pub preempt: Vec<(String, String)>,
    /// Families that must report a preemption check (those whose scenarios run).
    preempt_expected: Vec<String>,
    /// `eff=.. prm=.. bnd=.. unpriv_bpf_disabled=..`: flowtop's capabilities once
    /// attached (see [`caps_failure`]).
    pub caps: Option<String>,
    pub panicked: bool,
    pub timed_out: bool,
}

pub const COLUMNS: [&str; 4] = ["tracepoint", "fentry", "kprobe", "auto"];

impl KernelRun {
    pub fn judge(spec: &KernelSpec, package: &str, console: &Console) -> Self {
        let lines: Vec<&str> = console
            .lines
            .iter()
            .filter_map(|l| l.split_once("VMTEST ").map(|(_, rest)| rest.trim()))
            .collect();
        // `<family>   <scenario>: flowtop: warn: the kernel skipped flowtop's programs ...`
        let log: Vec<&str> = console
            .lines
            .iter()
            .filter_map(|l| l.split_once("VMTEST-LOG ").map(|(_, rest)| rest.trim()))
            .collect();
        let mut run = KernelRun {
            label: spec.label.to_string(),
            package: package.to_string(),
            release: None,
            cells: Vec::new(),
            verdicts: Vec::new(),
            costs: Vec::new(),
            preempt: Vec::new(),
            preempt_expected: spec
                .families
                .iter()
                .chain(&["auto"])
                .map(|f| f.to_string())
                .collect(),
            panicked: console.panicked,
            timed_out: console.timed_out,
            caps: None,
        };
        for line in &lines {
            if let Some(v) = line.strip_prefix("VERDICT ") {
                run.verdicts.push(v.to_string());
            } else if let Some(r) = line.strip_prefix("KERNEL ") {
                run.release = r.split_whitespace().next().map(str::to_string);
            } else if let Some((family, cost)) = line.split_once(" COST ") {
                run.costs.push((family.to_string(), cost.to_string()));
            } else if let Some((family, check)) = line.split_once(" PREEMPT ") {
                run.preempt.push((family.to_string(), check.to_string()));
            } else if let Some(c) = line.strip_prefix("CAPS ") {
                run.caps = Some(c.to_string());
            }
        }
        for family in COLUMNS {
            let must_run = spec.families.contains(&family) || family == "auto";
            let cell = if must_run {
                parse_ran(&lines, &log, family, spec)
            } else if spec.absent.contains(&family) {
                parse_absent(&lines, family)
            } else {
                continue;
            };
            run.cells.push((family.to_string(), cell));
        }
        run
    }

    /// Every reason this kernel's run failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let k = &self.label;
        if self.panicked {
            out.push(format!("{k}: kernel panic"));
        }
        if self.timed_out {
            out.push(format!("{k}: timed out"));
        }
        match self.verdicts.as_slice() {
            [v] if v == "success" => {}
            [] => out.push(format!("{k}: no verdict line")),
            [v] => out.push(format!("{k}: guest verdict {v}")),
            many => out.push(format!("{k}: {} verdict lines", many.len())),
        }
        if let Some(why) = caps_failure(self.release.as_deref(), self.caps.as_deref()) {
            out.push(format!("{k}: capabilities after attach: {why}"));
        }
        for family in &self.preempt_expected {
            match self.preempt.iter().find(|(f, _)| f == family) {
                None => out.push(format!("{k} {family}: no check under full preemption")),
                Some((_, check)) if !check.starts_with("PASS") => {
                    out.push(format!("{k} {family}: under full preemption: {check}"))
                }
                Some(_) => {}
            }
        }
        for (family, cell) in &self.cells {
            match cell {
                None => out.push(format!("{k} {family}: no result")),
                Some(c) if !c.passed() => out.push(format!("{k} {family}: {}", c.summary())),
                Some(_) => {}
            }
            if let Some(Cell::Ran {
                scenarios, missing, ..
            }) = cell
            {
                for s in scenarios.iter().filter(|s| !s.pass && !s.loss_reported) {
                    match &s.skipped {
                        Some(why) => out.push(format!("{k} {family} {}: SKIP ({why})", s.name)),
                        None => out.push(format!("{k} {family} {}: FAIL", s.name)),
                    }
                }
                for m in missing {
                    out.push(format!("{k} {family} {m}: missing"));
                }
            }
        }
        out
    }
}

/// Why flowtop's capabilities once attached (`caps`, the guest's `CAPS` line) are
/// not what the kernel's rule allows, if they are not: none at all from 5.19 on
/// (`kernel.unprivileged_bpf_disabled` stopped gating commands on fds already held)
/// or with the sysctl off, and CAP_BPF alone before 5.19 with it on.
fn caps_failure(release: Option<&str>, caps: Option<&str>) -> Option<String> {
    let Some(caps) = caps else {
        return Some("no CAPS line".into());
    };
    let field = |name: &str| {
        caps.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
    };
    // Without the release the rule cannot be applied: a failure, not a pass.
    let Some(release) = release else {
        return Some(format!("{caps}, but the kernel's release is unknown"));
    };
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let Some(version) = nums.next().zip(nums.next()) else {
        return Some(format!("{caps}, but the release {release} has no version"));
    };
    let disabled = field("unpriv_bpf_disabled=").is_some_and(|v| v != 0);
    let want: u64 = if version >= (5, 19) || !disabled {
        0
    } else {
        1 << 39 // CAP_BPF
    };
    let (eff, prm) = (field("eff="), field("prm="));
    (eff != Some(want) || prm != Some(want))
        .then(|| format!("{caps}, but this kernel allows {want:#x}"))
}

fn parse_ran(lines: &[&str], log: &[&str], family: &str, spec: &KernelSpec) -> Option<Cell> {
    let prefix = format!("{family} ");
    let mut scenarios = Vec::new();
    let mut rc = None;
    let mut chose = None;
    for line in lines.iter().filter_map(|l| l.strip_prefix(&prefix)) {
        if let Some(rest) = line.strip_prefix("SCENARIO ") {
            scenarios.extend(parse_scenario(rest));
        } else if let Some(r) = line.strip_prefix("EXIT rc=") {
            rc = r.trim().parse().ok();
        } else if let Some(c) = line.strip_prefix("CHOSE ") {
            chose = Some((c.trim().to_string(), spec.auto.to_string()));
        }
    }
    if spec.preempted.contains(&family) {
        for s in scenarios
            .iter_mut()
            .filter(|s| !s.pass && s.skipped.is_none())
        {
            let warned = format!("{family}   {}: flowtop: warn: the kernel skipped", s.name);
            s.loss_reported = log.iter().any(|l| l.starts_with(&warned));
        }
    }
    if family == "auto" && chose.is_none() {
        chose = Some(("none".to_string(), spec.auto.to_string()));
    }
    let missing = flowtop_tests::all_scenario_names()
        .into_iter()
        .filter(|n| !scenarios.iter().any(|s| s.name == *n))
        .map(str::to_string)
        .collect();
    (rc.is_some() || !scenarios.is_empty()).then_some(Cell::Ran {
        scenarios,
        missing,
        rc,
        chose,
    })
}

/// `<name> PASS|FAIL expected=E reported=R` or `<name> SKIP reason=WHY`
fn parse_scenario(rest: &str) -> Option<Scenario> {
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let status = words.next()?;
    let pass = status == "PASS";
    let skipped = (status == "SKIP").then(|| {
        rest.split_once(" reason=")
            .map_or("no reason given", |(_, why)| why)
            .to_string()
    });
    let (mut expected, mut reported) = (String::new(), String::new());
    for w in words {
        if let Some(v) = w.strip_prefix("expected=") {
            expected = v.to_string();
        } else if let Some(v) = w.strip_prefix("reported=") {
            reported = v.to_string();
        }
    }
    Some(Scenario {
        name,
        pass,
        expected,
        reported,
        skipped,
        loss_reported: false,
    })
}

fn parse_absent(lines: &[&str], family: &str) -> Option<Cell> {
    let rest = lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{family} ABSENT ")))?;
    let (fields, msg) = rest.split_once(" msg=").unwrap_or((rest, ""));
    let mut rc = None;
    let mut clean = false;
    for w in fields.split_whitespace() {
        if let Some(v) = w.strip_prefix("rc=") {
            rc = v.parse().ok();
        } else if let Some(v) = w.strip_prefix("clean=") {
            clean = v == "yes";
        }
    }
    Some(Cell::Absent {
        rc,
        clean,
        msg: msg.to_string(),
    })
}

/// Bytes in a scenario's `expected=`/`reported=` value: a plain number, or the sum of
/// every `rx=N` and `tx=N` in a structured one
/// (`sender[120,trafficgen]:rx=0,tx=266243;receiver[..]:rx=266243,tx=0`).
fn byte_total(value: &str) -> u64 {
    if let Ok(n) = value.parse() {
        return n;
    }
    value
        .split([';', ',', ':', ' '])
        .filter_map(|w| w.strip_prefix("rx=").or_else(|| w.strip_prefix("tx=")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// Markdown: the kernel x family table, then every scenario, then the messages of
/// the families that had to fail.
pub fn table(runs: &[KernelRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| kernel | {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(COLUMNS.len()));
    for run in runs {
        let release = run.release.as_deref().unwrap_or("did not boot");
        let _ = write!(out, "| {} ({release}) |", run.label);
        for family in COLUMNS {
            let text = match run.cells.iter().find(|(f, _)| f == family) {
                Some((_, Some(cell))) => cell.summary(),
                Some((_, None)) => "FAIL: no result".to_string(),
                None => "-".to_string(),
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out.push('\n');
    for run in runs {
        let _ = writeln!(out, "- {}: Debian package `{}`", run.label, run.package);
    }
    out.push_str(&cost_table(runs));
    out.push_str(&preempt_table(runs));
    let _ = writeln!(
        out,
        "\n| kernel | family | scenario | result | expected | reported |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for run in runs {
        for (family, cell) in &run.cells {
            match cell {
                Some(Cell::Ran { scenarios, .. }) => {
                    for s in scenarios {
                        let (result, reported) = match (&s.skipped, s.pass) {
                            (Some(why), _) => ("SKIP", why.replace('|', "/")),
                            (None, true) => ("PASS", s.reported.clone()),
                            (None, false) => ("FAIL", s.reported.clone()),
                        };
                        let _ = writeln!(
                            out,
                            "| {} | {family} | {} | {result} | {} | {reported} |",
                            run.label, s.name, s.expected
                        );
                    }
                }
                Some(Cell::Absent { msg, .. }) => {
                    let _ = writeln!(
                        out,
                        "| {} | {family} | (not supported) | {} | exit 1 | {} |",
                        run.label,
                        if cell.as_ref().is_some_and(Cell::passed) {
                            "PASS"
                        } else {
                            "FAIL"
                        },
                        msg.replace('|', "/")
                    );
                }
                None => {}
            }
        }
    }
    out
}

/// Per-call cost of each family's programs in the guests (kernel BPF stats, emulated
/// CPU: compare families within one kernel only).
fn cost_table(runs: &[KernelRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nBPF program time per 64-byte TCP send (one send and about one receive call), \
         from `kernel.bpf_stats_enabled` in the guest; emulated CPU (TCG), so compare \
         families within one kernel; kprobe's trap cost is not included:\n"
    );
    let _ = writeln!(out, "| kernel | {} |", COLUMNS[..3].join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(3));
    for run in runs {
        let _ = write!(out, "| {} |", run.label);
        for family in &COLUMNS[..3] {
            let text = run
                .costs
                .iter()
                .find(|(f, _)| f == family)
                .and_then(|(_, c)| {
                    c.split_whitespace()
                        .find_map(|w| w.strip_prefix("ns_per_call="))
                })
                .map_or("-".to_string(), |ns| format!("{ns} ns"));
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out
}

/// The checks under full preemption: per kernel and family, the bytes 16 sender
/// threads moved and what flowtop reported, and whether it warned.
fn preempt_table(runs: &[KernelRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nUnder full preemption (`/sys/kernel/debug/sched/preempt` set to `full` in the \
         guest), 16 threads sending 64-byte writes: flowtop's bytes must be exact, or it \
         must have warned (at start that the kernel preempts kernel code; for fentry, \
         also the calls the kernel skipped):\n"
    );
    let _ = writeln!(
        out,
        "| kernel | family | result | bytes sent | bytes reported | start warning | skipped calls reported |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for run in runs {
        for (family, check) in &run.preempt {
            let field = |name: &str| {
                check
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or("-")
                    .to_string()
            };
            let result = check.split_whitespace().next().unwrap_or("-");
            let _ = writeln!(
                out,
                "| {} | {family} | {result} | {} | {} | {} | {} |",
                run.label,
                field("expected_tx="),
                field("reported_tx="),
                if field("start_warning=") == "0" {
                    "no"
                } else {
                    "yes"
                },
                field("skipped_calls="),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &KernelSpec = &super::super::KERNELS[1]; // 6.1: fentry, kprobe; no tracepoint

    fn console(lines: &[&str]) -> Console {
        Console {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            panicked: false,
            timed_out: false,
        }
    }

    /// A 6.1 boot where every cell reports every scenario, passing.
    fn good() -> Vec<String> {
        let mut lines = vec![
            "[    1.0] random kernel line".to_string(),
            "VMTEST KERNEL 6.1.0-56-cloud-amd64 cpus=2".to_string(),
            "VMTEST auto CHOSE fentry".to_string(),
        ];
        for fam in ["fentry", "kprobe", "auto"] {
            for name in flowtop_tests::all_scenario_names() {
                lines.push(format!(
                    "VMTEST {fam} SCENARIO {name} PASS expected=100 reported=100"
                ));
            }
            lines.push(format!("VMTEST {fam} EXIT rc=0"));
        }
        lines.push(
            "VMTEST tracepoint ABSENT rc=1 clean=yes msg=flowtop: no usable probe: tracepoint: ..."
                .to_string(),
        );
        lines.push(
            "VMTEST fentry PREEMPT PASS expected_tx=600 reported_tx=400 start_warning=1 skipped_calls=3"
                .to_string(),
        );
        lines.push(
            "VMTEST kprobe PREEMPT PASS expected_tx=600 reported_tx=600 start_warning=1 skipped_calls=0"
                .to_string(),
        );
        lines.push(
            "VMTEST auto PREEMPT PASS expected_tx=600 reported_tx=600 start_warning=0 skipped_calls=0"
                .to_string(),
        );
        lines.push(
            "VMTEST CAPS eff=0000000000000000 prm=0000000000000000 bnd=0000000000000000 \
             unpriv_bpf_disabled=1"
                .to_string(),
        );
        lines.push("VMTEST VERDICT success".to_string());
        lines
    }

    /// No capability from 5.19 on; CAP_BPF alone before, with the sysctl set.
    #[test]
    fn capabilities_after_attach_follow_the_kernels_rule() {
        let caps = |eff: &str, disabled: u8| {
            format!("eff={eff} prm={eff} bnd=0 unpriv_bpf_disabled={disabled}")
        };
        let (none, bpf) = ("0000000000000000", "0000008000000000");
        let ok = |release: &str, c: String| caps_failure(Some(release), Some(&c)).is_none();
        assert!(ok("6.1.0-56-cloud-amd64", caps(none, 1)));
        assert!(!ok("6.1.0-56-cloud-amd64", caps(bpf, 1)));
        assert!(ok("5.10.0-46-cloud-amd64", caps(bpf, 1)));
        assert!(!ok("5.10.0-46-cloud-amd64", caps(none, 1)));
        assert!(ok("5.10.0-46-cloud-amd64", caps(none, 0)));
        assert!(ok("7.2.13+deb14-cloud-amd64", caps(none, 2)));
        assert!(caps_failure(Some("6.12.1"), None).is_some());
        assert!(caps_failure(None, Some(&caps(none, 1))).is_some());
    }

    fn refs(lines: &[String]) -> Vec<&str> {
        lines.iter().map(String::as_str).collect()
    }

    #[test]
    fn sums_structured_byte_values() {
        assert_eq!(byte_total("300007"), 300007);
        assert_eq!(
            byte_total("sender[1,tg]:rx=0,tx=5;receiver[2,tg]:rx=5,tx=0;sender_intervals=4"),
            10
        );
    }

    #[test]
    fn all_good_passes() {
        let run = KernelRun::judge(SPEC, "pkg", &console(&refs(&good())));
        assert_eq!(run.failures(), Vec::<String>::new());
        assert_eq!(run.release.as_deref(), Some("6.1.0-56-cloud-amd64"));
        let t = table(&[run]);
        assert!(t.contains("not supported: fails cleanly (exit 1)"), "{t}");
        let n = flowtop_tests::all_scenario_names().len();
        assert!(t.contains(&format!("PASS (chose fentry) {n}/{n}")), "{t}");
    }

    /// On a kernel whose fentry programs run preemptible (7.2 as spec), a scenario
    /// that lost bytes passes only where flowtop reported the skipped calls.
    #[test]
    fn loss_passes_only_where_reported_and_the_family_is_preempted() {
        let spec = KernelSpec {
            preempted: &["fentry"],
            ..super::super::KERNELS[1]
        };
        let fail = |lines: &mut Vec<String>, fam: &str| {
            let threads = format!("VMTEST {fam} SCENARIO threads PASS expected=100 reported=100");
            let i = lines
                .iter()
                .position(|l| *l == threads)
                .expect("threads line");
            lines[i] = format!("VMTEST {fam} SCENARIO threads FAIL expected=100 reported=90");
            let exit = format!("VMTEST {fam} EXIT rc=0");
            let i = lines.iter().position(|l| *l == exit).expect("exit line");
            lines[i] = format!("VMTEST {fam} EXIT rc=1");
        };
        let mut lines = good();
        fail(&mut lines, "fentry");
        let silent = KernelRun::judge(&spec, "pkg", &console(&refs(&lines)));
        assert!(!silent.failures().is_empty());
        lines.push(
            "VMTEST-LOG fentry   threads: flowtop: warn: the kernel skipped flowtop's programs \
             for 6 socket calls this interval"
                .to_string(),
        );
        let reported = KernelRun::judge(&spec, "pkg", &console(&refs(&lines)));
        assert_eq!(reported.failures(), Vec::<String>::new());
        // The same report does not excuse a family the spec does not list.
        fail(&mut lines, "kprobe");
        lines.push(
            "VMTEST-LOG kprobe   threads: flowtop: warn: the kernel skipped flowtop's programs"
                .to_string(),
        );
        let kprobe = KernelRun::judge(&spec, "pkg", &console(&refs(&lines)));
        assert!(kprobe.failures().iter().any(|f| f.contains("kprobe")));
    }

    #[test]
    fn a_failed_or_missing_preemption_check_fails() {
        let lines: Vec<String> = good()
            .into_iter()
            .filter(|l| !l.starts_with("VMTEST kprobe PREEMPT"))
            .map(|l| l.replace("fentry PREEMPT PASS", "fentry PREEMPT FAIL"))
            .collect();
        let f = KernelRun::judge(SPEC, "pkg", &console(&refs(&lines))).failures();
        assert!(
            f.contains(&"6.1 kprobe: no check under full preemption".to_string()),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("6.1 fentry: under full preemption: FAIL")),
            "{f:?}"
        );
        let t = table(&[KernelRun::judge(SPEC, "pkg", &console(&refs(&good())))]);
        assert!(
            t.contains("| 6.1 | fentry | PASS | 600 | 400 | yes | 3 |"),
            "{t}"
        );
    }

    #[test]
    fn a_cell_without_the_connection_scenarios_fails() {
        let lines: Vec<String> = good()
            .into_iter()
            .filter(|l| !l.starts_with("VMTEST kprobe SCENARIO conn_"))
            .collect();
        let f = KernelRun::judge(SPEC, "pkg", &console(&refs(&lines))).failures();
        assert!(
            f.contains(&"6.1 kprobe conn_exact: missing".to_string()),
            "{f:?}"
        );
        assert!(f.iter().any(|m| m.starts_with("6.1 kprobe: FAIL")), "{f:?}");
    }

    #[test]
    fn a_skipped_scenario_fails_its_cell_with_the_reason() {
        let lines: Vec<String> = good()
            .into_iter()
            .map(|l| {
                if l.starts_with("VMTEST fentry SCENARIO pid_filter ") {
                    "VMTEST fentry SCENARIO pid_filter SKIP reason=cannot run here".to_string()
                } else {
                    l
                }
            })
            .collect();
        let run = KernelRun::judge(SPEC, "pkg", &console(&refs(&lines)));
        let f = run.failures();
        assert!(
            f.contains(&"6.1 fentry pid_filter: SKIP (cannot run here)".to_string()),
            "{f:?}"
        );
        let n = flowtop_tests::all_scenario_names().len();
        let t = table(&[run]);
        assert!(
            t.contains(&format!("FAIL {}/{n} (1 skipped)", n - 1)),
            "{t}"
        );
        assert!(
            t.contains("| pid_filter | SKIP |  | cannot run here |"),
            "{t}"
        );
    }

    #[test]
    fn missing_verdict_wrong_auto_and_inexact_bytes_fail() {
        let good = good();
        let mut lines: Vec<&str> = refs(&good[..good.len() - 1]);
        for l in &mut lines {
            if l.starts_with("VMTEST kprobe SCENARIO tcp4 ") {
                *l = "VMTEST kprobe SCENARIO tcp4 FAIL expected=100 reported=99";
            } else if l.starts_with("VMTEST auto CHOSE") {
                *l = "VMTEST auto CHOSE kprobe";
            }
        }
        let f = KernelRun::judge(SPEC, "pkg", &console(&lines)).failures();
        assert!(f.iter().any(|m| m.contains("no verdict")), "{f:?}");
        assert!(f.iter().any(|m| m.starts_with("6.1 kprobe")), "{f:?}");
        assert!(f.iter().any(|m| m.starts_with("6.1 auto")), "{f:?}");
    }

    #[test]
    fn a_family_that_never_reported_fails_and_so_does_a_dirty_absent() {
        let good = good();
        let lines: Vec<&str> = refs(&good)
            .into_iter()
            .filter(|l| !l.starts_with("VMTEST kprobe"))
            .map(|l| {
                if l.contains("ABSENT") {
                    "VMTEST tracepoint ABSENT rc=101 clean=no msg=thread 'main' panicked"
                } else {
                    l
                }
            })
            .collect();
        let f = KernelRun::judge(SPEC, "pkg", &console(&lines)).failures();
        assert!(f.contains(&"6.1 kprobe: no result".to_string()), "{f:?}");
        assert!(f.iter().any(|m| m.starts_with("6.1 tracepoint")), "{f:?}");
    }
}
