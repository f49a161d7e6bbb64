//! Every output format against ground truth: the real flowtop binary counts real
//! loopback traffic that `trafficgen phases` generates (one process holding both ends
//! of its connections, so its PID is distinct and known); trafficgen adds up the
//! return values of its own send/recv calls. CSV is parsed with the csv crate, JSON
//! with serde_json, the table by columns, and the redrawn screen (`-C`) is read back
//! from a real terminal under tmux.
//!
//! Needs root (loads eBPF) and tmux: without them the tests fail, naming what is
//! missing.
use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use flowtop_tests::{args, require_tool, Ctx, Flowtop, Gen, Truth, CORE_KEYS, READY_MARKER};
use serde_json::Value;

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

/// `trafficgen phases`, set up and waiting for go: `n` phases of about `size` bytes
/// each way, `pause_ms` apart.
fn phases(ctx: &Ctx, n: u32, size: u32, pause_ms: u32) -> Gen {
    let a = args(&[
        "--wait-go",
        "phases",
        &n.to_string(),
        &size.to_string(),
        &pause_ms.to_string(),
    ]);
    let gen = Gen::spawn(ctx, &a).expect("trafficgen starts");
    gen.ready().expect("trafficgen ready");
    gen
}

/// Runs `traffic` beside flowtop `args` (with `-p` its PID unless `all`), interrupts
/// flowtop once the traffic is done, returns flowtop's stdout and the ground truth.
fn record(
    ctx: &Ctx,
    args: &[&str],
    envs: &[(&str, &str)],
    all: bool,
    traffic: Gen,
) -> (String, Truth) {
    let mut traffic = traffic;
    let pid = traffic.ready().expect("ready").pid.to_string();
    let mut ft = Flowtop::builder(ctx).raw().args(args);
    if !all {
        ft = ft.args(&["-p", &pid]);
    }
    for (k, v) in envs {
        ft = ft.env(k, v);
    }
    let ft = ft.start().expect("flowtop starts");
    traffic.go().expect("go");
    let truth = traffic.finish().expect("traffic");
    assert_eq!(
        truth.pid.to_string(),
        pid,
        "the ready line and the truth name one PID"
    );
    thread::sleep(Duration::from_millis(300));
    let run = ft.stop().expect("flowtop stops");
    run.assert_clean();
    (run.text, truth)
}

#[test]
fn csv_rows_add_up_to_the_bytes_moved() {
    let ctx = ctx();
    let (out, truth) = record(
        &ctx,
        &["--format", "csv", "1"],
        &[],
        true,
        phases(&ctx, 6, 150_000, 400),
    );
    let mut rdr = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, CORE_KEYS);
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        assert_eq!(rec.len(), 9, "{rec:?}");
        if rec[2].parse::<u32>().unwrap() == truth.pid {
            rows.push(rec);
        }
    }
    let num = |r: &csv::StringRecord, i: usize| r[i].parse::<u64>().unwrap();
    let intervals: Vec<u64> = rows.iter().map(|r| num(r, 1)).collect();
    assert!(
        intervals.len() >= 2,
        "traffic spans intervals: {intervals:?}"
    );
    assert!(intervals.windows(2).all(|w| w[0] < w[1]), "{intervals:?}");
    assert!(rows.iter().all(|r| r[3] == *truth.comm));
    assert_eq!(
        rows.iter().map(|r| num(r, 4)).sum::<u64>(),
        truth.rx_bytes,
        "rx"
    );
    assert_eq!(
        rows.iter().map(|r| num(r, 5)).sum::<u64>(),
        truth.tx_bytes,
        "tx"
    );
    let last = rows.last().unwrap();
    assert_eq!(
        (num(last, 6), num(last, 7)),
        (truth.rx_bytes, truth.tx_bytes)
    );
    assert_eq!(num(last, 8), truth.rx_bytes + truth.tx_bytes);
}

#[test]
fn json_rows_summaries_and_rates_agree_with_the_bytes_moved() {
    let ctx = ctx();
    let (out, truth) = record(
        &ctx,
        &["--format", "json", "--summary", "--rate", "1"],
        &[],
        true,
        phases(&ctx, 6, 120_000, 400),
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (mut rx, mut tx, mut mine) = (0, 0, 0);
    // Rows of the interval being read, checked against that interval's summary.
    let (mut n, mut all_rx, mut all_tx, mut current) = (0u64, 0u64, 0u64, 0u64);
    let mut summaries = 0;
    for v in &lines {
        let interval = v["interval"].as_u64().unwrap();
        if let Some(s) = v.get("summary") {
            assert!(v.get("pid").is_none() && v.get("rx_bytes").is_none());
            if n > 0 {
                assert_eq!(interval, current, "summary follows its rows");
            }
            assert_eq!(s["processes"].as_u64(), Some(n), "interval {interval}");
            assert_eq!(s["all_rx_bytes"].as_u64(), Some(all_rx));
            assert_eq!(s["all_tx_bytes"].as_u64(), Some(all_tx));
            (n, all_rx, all_tx) = (0, 0, 0);
            summaries += 1;
            continue;
        }
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 12, "{v}");
        current = interval;
        n += 1;
        let b = |k: &str| v[k].as_u64().unwrap();
        all_rx += b("rx_bytes");
        all_tx += b("tx_bytes");
        let secs = v["seconds"].as_f64().unwrap();
        let rate = v["rx_bytes_per_sec"].as_f64().unwrap();
        assert!(
            (rate * secs - b("rx_bytes") as f64).abs() < 1e-3 * (1.0 + rate),
            "{v}"
        );
        if b("pid") == u64::from(truth.pid) {
            assert_eq!(v["comm"], *truth.comm);
            rx += b("rx_bytes");
            tx += b("tx_bytes");
            mine += 1;
            assert_eq!(b("total_bytes"), b("rx_total_bytes") + b("tx_total_bytes"));
        }
    }
    assert_eq!(n, 0, "rows after the last summary");
    assert!(
        summaries >= 3 && mine >= 2,
        "{summaries} summaries, {mine} rows"
    );
    assert_eq!((rx, tx), (truth.rx_bytes, truth.tx_bytes));
}

#[test]
fn table_in_bytes_fits_columns_and_adds_up() {
    let ctx = ctx();
    let (out, truth) = record(
        &ctx,
        &["--units", "bytes", "-T", "1"],
        &[("COLUMNS", "60")],
        false,
        phases(&ctx, 5, 100_000, 400),
    );
    let (mut rx, mut tx, mut rows, mut last_rxsum) = (0, 0, 0, 0);
    for line in out.lines() {
        assert!(line.chars().count() <= 60, "wider than COLUMNS: {line:?}");
        assert!(!line.contains('\x1b'), "no escapes in a pipe");
        let w: Vec<&str> = line.split_whitespace().collect();
        if line.contains(" interval ") {
            assert!(line.contains(": 1 process, RX "), "{line}");
            continue;
        }
        if w.first() == Some(&"TIME") {
            // Sixty columns: COMM shrinks, SUM_BYTES and TXSUM_BYTES are dropped.
            assert_eq!(
                w,
                ["TIME", "PID", "COMM", "RX_BYTES", "TX_BYTES", "RXSUM_BYTES"]
            );
            continue;
        }
        if w.len() == 6 {
            assert_eq!(w[1], truth.pid.to_string());
            let shown = w[2].trim_end_matches('…');
            assert!(truth.comm.starts_with(shown), "{} vs {}", w[2], truth.comm);
            rx += w[3].parse::<u64>().unwrap();
            tx += w[4].parse::<u64>().unwrap();
            last_rxsum = w[5].parse::<u64>().unwrap();
            rows += 1;
        }
    }
    assert!(rows >= 2, "{out}");
    assert_eq!(
        (rx, tx, last_rxsum),
        (truth.rx_bytes, truth.tx_bytes, truth.rx_bytes)
    );
}

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Self {
        require_tool("tmux", "tmux");
        Self {
            socket: format!("flowtop-test-{}-{tag}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn wait_for(path: &Path, needle: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "no {needle:?} in {}: {text}",
            path.display()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `-C` in a real terminal: the screen is redrawn each interval (one summary, one
/// header, at the top), holds our process's row, and nothing is wider than the pane.
/// With `resize_to`, the pane is then narrowed and the next redraw must fit it.
fn screen_mode(tag: &str, width: u16, no_color: bool, resize_to: Option<u16>) {
    let tmux = Tmux::new(tag);
    let ctx = ctx();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&tmux.socket);
    std::fs::create_dir_all(&dir).unwrap();
    let (err, status) = (dir.join("stderr"), dir.join("status"));
    let mut traffic = phases(&ctx, 25, 20_000, 200);
    let pid = traffic.ready().expect("ready").pid;
    let colour = if no_color { "NO_COLOR=1" } else { "NO_COLOR=" };
    let script = format!(
        "trap true INT; env -u COLUMNS -u LINES {colour} {} -v -C -p {pid} 1 2>{}; echo $? >{}; sleep 60",
        ctx.flowtop.display(),
        err.display(),
        status.display()
    );
    let (w, h) = (width.to_string(), "30".to_string());
    tmux.run(&["new-session", "-d", "-x", &w, "-y", &h, "sh", "-c", &script]);
    wait_for(&err, READY_MARKER, Duration::from_secs(60));
    traffic.go().expect("go");
    thread::sleep(Duration::from_millis(2600)); // two redraws with traffic
    let screen = tmux.run(&["capture-pane", "-p", "-t", "0"]);
    let styled = tmux.run(&["capture-pane", "-p", "-e", "-t", "0"]);
    let truth = traffic.finish().expect("traffic");

    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[0].contains(" interval ") && lines[0].contains(": 1 process,"),
        "{screen}"
    );
    assert!(
        lines[1].starts_with("PID"),
        "header right below the summary:\n{screen}"
    );
    assert_eq!(
        screen.matches("PID ").count(),
        1,
        "redrawn, not scrolled:\n{screen}"
    );
    assert!(
        lines[1].trim_end().chars().count() <= usize::from(width),
        "{}",
        lines[1]
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(row[0], truth.pid.to_string(), "{screen}");
    assert!(
        truth.comm.starts_with(row[1].trim_end_matches('…')),
        "{screen}"
    );
    assert!(
        lines[3..].iter().all(|l| l.trim().is_empty()),
        "one row:\n{screen}"
    );
    if no_color {
        assert!(!styled.contains('\x1b'), "NO_COLOR: {styled:?}");
    } else {
        assert!(styled.contains("\x1b[1mPID"), "bold header: {styled:?}");
    }

    if let Some(narrow) = resize_to {
        tmux.run(&["resize-window", "-t", "0", "-x", &narrow.to_string()]);
        thread::sleep(Duration::from_millis(1300)); // one redraw at the new size
        let screen = tmux.run(&["capture-pane", "-p", "-t", "0"]);
        let lines: Vec<&str> = screen.lines().collect();
        assert!(
            lines[1].starts_with("PID"),
            "redrawn after resize:\n{screen}"
        );
        for l in &lines {
            assert!(
                l.trim_end().chars().count() <= usize::from(narrow),
                "line wider than the resized pane ({narrow}): {l:?}\n{screen}"
            );
        }
        assert!(
            lines[1].trim_end().chars().count() < usize::from(width) - 20,
            "the header shrank with the pane:\n{screen}"
        );
    }

    tmux.run(&["send-keys", "-t", "0", "C-c"]);
    let code = wait_for(&status, "\n", Duration::from_secs(5));
    assert_eq!(code.trim(), "0", "flowtop exit status after Ctrl-C");
}

#[test]
fn screen_mode_redraws_in_a_real_terminal() {
    screen_mode("wide", 100, false, None);
}

#[test]
fn screen_mode_in_a_narrow_terminal_without_colour() {
    screen_mode("narrow", 50, true, None);
}

#[test]
fn screen_mode_follows_a_resized_terminal() {
    screen_mode("resized", 100, true, Some(45));
}

#[test]
fn version_names_the_commit_and_target_it_was_built_from() {
    let out = Command::new(flowtop_tests::find_flowtop())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string());
    match head {
        // The target triple's vendor and libc part depend on the build (gnu, musl).
        Some(commit) => {
            let prefix = format!(
                "flowtop {} (commit {commit}, {}-",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            );
            let libc = if cfg!(target_env = "musl") {
                "musl"
            } else {
                "gnu"
            };
            let suffix = format!("-linux-{libc})");
            assert!(
                version.starts_with(&prefix) && version.trim().ends_with(&suffix),
                "{version:?} is not {prefix}...{suffix}"
            );
        }
        None => assert!(version.starts_with("flowtop ")), // not a git checkout
    }
}
