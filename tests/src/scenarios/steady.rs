//! Steady traffic across interval boundaries.
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};

use super::STEADY_INTERVALS;
use crate::{args, check, target, Ctx, Expect, Flowtop, Gen, ScenarioResult};

/// Steady traffic for `ctx.steady_secs` under `flowtop 1 [COUNT]`: the per-interval
/// rows must add up exactly, and at least `min_intervals` intervals must carry bytes
/// of the sender. With `count`, flowtop must exit by itself; otherwise SIGINT.
pub fn steady_intervals(ctx: &Ctx, count: Option<u64>, min_intervals: usize) -> ScenarioResult {
    const NAME: &str = STEADY_INTERVALS;
    let run = || -> Result<ScenarioResult> {
        // flowtop first, then the sink: with the fentry and kprobe families, exit
        // probes cannot see a recv() that was already blocked when they attached, so a
        // sink started earlier would test that documented limit, not interval sums.
        let mut extra = args(&["1"]);
        extra.extend(count.map(|c| c.to_string()));
        let mut ft = Flowtop::start(ctx, &extra)?;
        let sink = Gen::spawn(ctx, &args(&["tcp-sink", "127.0.0.1"]))?;
        let port = sink.ready()?.port.context("sink printed no port")?;
        let mut src = Gen::spawn(
            ctx,
            &args(&[
                "--wait-go",
                "--chunk",
                "4096",
                "--rate",
                &ctx.steady_rate.to_string(),
                "steady",
                &target("127.0.0.1", port),
                &ctx.steady_secs.to_string(),
            ]),
        )?;
        src.ready()?;
        let started = Instant::now();
        src.go()?;
        let src_truth = src.finish()?;
        let sink_truth = sink.finish()?;
        let traffic_took = started.elapsed();
        // With COUNT, flowtop must still be running, or it missed some of the traffic
        // for reasons of timing, not counting: say so instead of a byte mismatch.
        ensure!(
            ft.is_running(),
            "flowtop exited before the traffic ended ({traffic_took:?} of traffic); \
             the machine is too slow for this COUNT"
        );
        let run = match count {
            Some(c) => ft.wait(Duration::from_secs(c) + ctx.timeout)?,
            None => ft.stop()?,
        };
        let mut res = check(
            NAME,
            &[
                Expect::from_truth("sender", &src_truth),
                Expect::from_truth("receiver", &sink_truth),
            ],
            &run,
            None,
        );
        let intervals = run.reported(src_truth.pid).intervals;
        let with_bytes = intervals.values().filter(|(rx, tx)| rx + tx > 0).count();
        res.expected
            .push_str(&format!(";sender_intervals>={min_intervals}"));
        res.reported.push_str(&format!(
            ";sender_intervals={with_bytes} per_interval_tx={:?}",
            intervals.values().map(|v| v.1).collect::<Vec<_>>()
        ));
        if with_bytes < min_intervals {
            res.fail(&format!(
                "sender had bytes in {with_bytes} intervals, wanted at least {min_intervals} \
                 (traffic took {traffic_took:?})"
            ));
        }
        if let Some(c) = count {
            let last = run.rows.iter().map(|r| r.interval).max().unwrap_or(0);
            if last > c {
                res.fail(&format!(
                    "flowtop {c} reports, yet a row has interval {last}"
                ));
            }
        }
        Ok(res)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(NAME, &e))
}
