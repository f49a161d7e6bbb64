//! The plain scenarios' traffic: each runs trafficgen against a flowtop that is
//! already running and returns what flowtop must report, from trafficgen's ground truth.
use std::path::Path;

use anyhow::{ensure, Context as _, Result};

use crate::{args, target, Ctx, Expect, Gen, Truth};

/// A sink on `addr`, then `source` against it; both ground truths.
fn sink_and_source(
    ctx: &Ctx,
    sink: &[&str],
    addr: &str,
    source: &[String],
) -> Result<(Truth, Truth)> {
    let mut sink_args = args(sink);
    sink_args.push(addr.into());
    let sink = Gen::spawn(ctx, &sink_args)?;
    let port = sink.ready()?.port.context("sink printed no port")?;
    let mut src_args = vec![source[0].clone(), target(addr, port)];
    src_args.extend_from_slice(&source[1..]);
    let src = Gen::spawn(ctx, &src_args)?;
    let src_truth = src.finish()?;
    let sink_truth = sink.finish()?;
    Ok((src_truth, sink_truth))
}

fn stream(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        addr,
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    // The generator's own sanity: TCP delivers what was sent.
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

pub(super) fn tcp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "127.0.0.1", ctx.bytes + 4_099)
}

pub(super) fn tcp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "::1", ctx.bytes + 6_007)
}

fn datagrams(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["udp-recv"],
        addr,
        &args(&["udp-send", &bytes.to_string(), "--dgram", "1333"]),
    )?;
    ensure!(
        src.tx_bytes == bytes,
        "sender moved {src:?}, wanted {bytes}"
    );
    ensure!(sink.rx_bytes > 0, "receiver got nothing: {sink:?}");
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

pub(super) fn udp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "127.0.0.1", ctx.bytes / 8 + 4_111)
}

pub(super) fn udp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "::1", ctx.bytes / 8 + 6_113)
}

/// Four threads named ft-worker-N send under a process named ft-mtmain.
pub(super) fn threads(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 1_237;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "4"],
        "127.0.0.1",
        &args(&["threads", &bytes.to_string(), "4", "--name", "ft-mtmain"]),
    )?;
    ensure!(src.comm == "ft-mtmain", "process name not set: {src:?}");
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("threads", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A forked child renames itself ft-short, sends and exits before flowtop reads.
pub(super) fn short_child(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 4 + 3_001;
    let (child, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["short", &bytes.to_string(), "--name", "ft-short"]),
    )?;
    let parent = child.parent_pid.context("short: no parent_pid")?;
    ensure!(
        child.comm == "ft-short" && child.pid != parent,
        "bad child truth {child:?}"
    );
    ensure!(
        !Path::new(&format!("/proc/{}", child.pid)).exists(),
        "child {} still exists",
        child.pid
    );
    Ok(vec![
        Expect::from_truth("child", &child),
        Expect {
            role: "parent".into(),
            pid: parent,
            comm: None,
            renamed_from: None,
            rx: 0,
            tx: 0,
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// The receiver peeks at every chunk before reading it: peeks move nothing.
pub(super) fn msg_peek(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 2 + 2_221;
    let (src, sink) = sink_and_source(
        ctx,
        &["peek-sink"],
        "::1",
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    ensure!(
        sink.rx_bytes == bytes,
        "peek sink read {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("peek-receiver", &sink),
    ])
}

pub(super) fn sendfile(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 8_191;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["sendfile", &bytes.to_string()]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("sendfile", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A sender that renames itself half-way (`trafficgen renamed`): its bytes stay one
/// process's, and the rows after the rename carry the new name.
fn renamed(ctx: &Ctx, bytes: u64, how: &str, before: &str) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "2"],
        "127.0.0.1",
        &args(&["renamed", &bytes.to_string(), how, "--name", before]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes && src.comm != before,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect {
            renamed_from: Some(before.into()),
            ..Expect::from_truth("renamed", &src)
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// `prctl(PR_SET_NAME)` half-way.
pub(super) fn prctl_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_109, "prctl:ft-renamed", "ft-prename")
}

/// exec half-way: the same PID continues as `trafficgen`.
pub(super) fn exec_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_201, "exec", "ft-preexec")
}
