//! Process filters (`-p`, `-c`, `--cgroup`) with pairs of processes moving bytes.
use std::path::Path;

use anyhow::{ensure, Context as _, Result};

use super::{CGROUP_FILTER, COMM_FILTER, PID_FILTER, PID_LIST_FILTER};
use crate::{
    args, check, target, Ctx, Expect, Flowtop, Gen, ScenarioCgroup, ScenarioResult, Truth,
};

/// Which process of a [`Pair`] a filter scenario must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Sender,
    Sink,
}

/// A TCP sink and a sender connected to it, two processes, both waiting for go: their
/// PIDs are known before flowtop starts (`-p` needs them), yet their first recv and send
/// start after it attached (fentry and kprobe miss a call already in progress).
struct Pair {
    sink: Gen,
    src: Gen,
    bytes: u64,
}

impl Pair {
    /// `sink_opts`/`src_opts`: trafficgen options of each (`--name`, `--cgroup`).
    fn spawn(
        ctx: &Ctx,
        addr: &str,
        bytes: u64,
        sink_opts: &[String],
        src_opts: &[String],
    ) -> Result<(Pair, u32)> {
        let mut a = args(&["--wait-go"]);
        a.extend_from_slice(sink_opts);
        a.extend(args(&["tcp-sink", addr]));
        let sink = Gen::spawn(ctx, &a)?;
        let port = sink.ready()?.port.context("sink printed no port")?;
        let mut a = args(&["--wait-go"]);
        a.extend_from_slice(src_opts);
        a.extend(args(&[
            "tcp-source",
            &target(addr, port),
            &bytes.to_string(),
        ]));
        let src = Gen::spawn(ctx, &a)?;
        let src_pid = src.ready()?.pid;
        Ok((Pair { sink, src, bytes }, src_pid))
    }

    fn go(&mut self) -> Result<()> {
        self.sink.go()?;
        self.src.go()
    }

    /// The ground truths (sender, sink); TCP delivered every byte.
    fn finish(self) -> Result<(Truth, Truth)> {
        let src = self.src.finish()?;
        let sink = self.sink.finish()?;
        ensure!(
            src.tx_bytes == self.bytes && sink.rx_bytes == self.bytes,
            "generator moved {src:?} / {sink:?}, wanted {}",
            self.bytes
        );
        Ok((src, sink))
    }
}

/// Every pair's traffic at once under `flowtop FILTER`: the ends in `keep` (pair index,
/// end) must be reported exactly, and no other PID may appear at all, though every
/// other end moved bytes as well (all pairs carry traffic; the result lists them as
/// `excluded`).
fn process_filter(
    ctx: &Ctx,
    name: &str,
    mut pairs: Vec<Pair>,
    filter: &[String],
    keep: &[(usize, End)],
) -> Result<ScenarioResult> {
    let ft = Flowtop::start(ctx, filter)?;
    for p in &mut pairs {
        p.go()?;
    }
    let truths: Vec<(Truth, Truth)> = pairs.into_iter().map(Pair::finish).collect::<Result<_>>()?;
    let run = ft.stop()?;
    let mut expects = Vec::new();
    let mut excluded = Vec::new();
    for (i, (src, sink)) in truths.iter().enumerate() {
        for (end, truth, role) in [(End::Sender, src, "sender"), (End::Sink, sink, "sink")] {
            let role = format!("{role}{i}");
            if keep.contains(&(i, end)) {
                expects.push(Expect::from_truth(&role, truth));
            } else {
                excluded.push(format!("{role}/{}", truth.pid));
            }
        }
    }
    let pids: Vec<u32> = expects.iter().map(|e| e.pid).collect();
    let mut res = check(name, &expects, &run, Some(&pids));
    res.expected
        .push_str(&format!(";excluded={}", excluded.join(",")));
    Ok(res)
}

/// Spawns one [`Pair`] per entry of `opts` (sink options, sender options), over
/// 127.0.0.1 and ::1 in turn, each moving a different number of bytes; returns them
/// with the senders' PIDs.
fn pairs(ctx: &Ctx, opts: &[(Vec<String>, Vec<String>)]) -> Result<(Vec<Pair>, Vec<u32>)> {
    let mut pairs = Vec::new();
    let mut senders = Vec::new();
    for (i, (sink_opts, src_opts)) in opts.iter().enumerate() {
        let addr = ["127.0.0.1", "::1"][i % 2];
        let bytes = ctx.bytes / 4 + 5_003 + 1_013 * i as u64;
        let (pair, pid) = Pair::spawn(ctx, addr, bytes, sink_opts, src_opts)?;
        pairs.push(pair);
        senders.push(pid);
    }
    Ok((pairs, senders))
}

/// `flowtop -p SENDER` while a second sender runs at the same time
/// (`KernelConfig::filter_tgid`): only the first one's bytes, and nothing of anyone else.
pub fn pid_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let (pairs, senders) = pairs(ctx, &[Default::default(), Default::default()])?;
        let filter = args(&["-p", &senders[0].to_string()]);
        process_filter(ctx, PID_FILTER, pairs, &filter, &[(0, End::Sender)])
    };
    run().unwrap_or_else(|e| ScenarioResult::error(PID_FILTER, &e))
}

/// `flowtop -p A,B` (the `FILTER_PIDS` map) with three senders: exactly A and B.
pub fn pid_list_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let (pairs, senders) = pairs(ctx, &vec![Default::default(); 3])?;
        let filter = args(&["-p", &format!("{},{}", senders[0], senders[1])]);
        let keep = [(0, End::Sender), (1, End::Sender)];
        process_filter(ctx, PID_LIST_FILTER, pairs, &filter, &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(PID_LIST_FILTER, &e))
}

/// The name `comm_filter` asks for, and one it extends (a prefix match would take it).
const COMM_IN: &str = "ft-comm";
const COMM_OUT: &str = "ft-comm2";

/// `flowtop -c ft-comm`: two senders and one sink have that name, exactly they count;
/// a sender named ft-comm2 and the sinks named trafficgen do not.
pub fn comm_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let name = |n: &str| args(&["--name", n]);
        let (pairs, _) = pairs(
            ctx,
            &[
                (name(COMM_IN), name(COMM_IN)),
                (vec![], name(COMM_IN)),
                (vec![], name(COMM_OUT)),
            ],
        )?;
        let keep = [(0, End::Sink), (0, End::Sender), (1, End::Sender)];
        process_filter(ctx, COMM_FILTER, pairs, &args(&["-c", COMM_IN]), &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(COMM_FILTER, &e))
}

/// `flowtop --cgroup C` with C a cgroup v2 made for the scenario: a sender in C and
/// its sink in a cgroup below C count exactly; a second pair outside C does not.
/// SKIP when this machine has no cgroup v2 to make C in.
pub fn cgroup_filter(ctx: &Ctx) -> ScenarioResult {
    let cg = match ScenarioCgroup::create("flowtop-scenario") {
        Ok(cg) => cg,
        Err(why) => return ScenarioResult::skip(CGROUP_FILTER, &why),
    };
    let run = || {
        let join = |dir: &Path| args(&["--cgroup", &dir.to_string_lossy()]);
        let (pairs, _) = pairs(ctx, &[(join(&cg.below), join(&cg.dir)), Default::default()])?;
        let keep = [(0, End::Sender), (0, End::Sink)];
        let filter = args(&["--cgroup", &cg.path]);
        process_filter(ctx, CGROUP_FILTER, pairs, &filter, &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(CGROUP_FILTER, &e))
}
