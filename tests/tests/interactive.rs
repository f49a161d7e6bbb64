//! `flowtop -i` in a real terminal: tmux runs it (120x30), the test presses keys
//! and reads the screen while trafficgen moves a known number of bytes over
//! loopback; every byte figure asserted is trafficgen's own syscalls' count. flowtop
//! counts only the port of this test's own sink (`--port`), so other traffic on the
//! machine (other tests, other engineers) never reaches the screen.
//!
//! Needs root, tmux, and for the container test podman + runc + busybox-static
//! (`scripts/setup.sh test` installs them), and a built flowtop (`cargo build
//! --release -p flowtop`); a missing one fails the test.
use std::{
    thread,
    time::{Duration, Instant},
};

use flowtop_tests::{
    args,
    podman::{Container, Image, Network},
    Ctx, Gen, Tmux, Truth, PROMPT,
};

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

const SECOND: Duration = Duration::from_secs(1);

/// The cells of the row whose first cell is `pid`, if shown.
fn row(screen: &str, pid: u32) -> Option<Vec<String>> {
    let pid = pid.to_string();
    screen
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&pid))
}

/// A screen line's cells, one space apart.
fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The column names.
fn header(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .find(|l| l.starts_with("PID "))
        .map_or_else(Vec::new, |l| l.split_whitespace().collect())
}

/// `--by pid` with `--units bytes` (PID COMM RX TX RXSUM TXSUM SUM): the totals.
fn totals(screen: &str, pid: u32) -> Option<(u64, u64)> {
    let cells = row(screen, pid)?;
    Some((cells.get(4)?.parse().ok()?, cells.get(5)?.parse().ok()?))
}

/// A named sender of `bytes` to `port` that stays alive after (`--hold`), with
/// its ground truth.
fn send(ctx: &Ctx, name: &str, port: u16, bytes: u64) -> (Gen, Truth) {
    let target = format!("127.0.0.1:{port}");
    let g = Gen::spawn(
        ctx,
        &args(&[
            "--name",
            name,
            "--hold",
            "tcp-source",
            &target,
            &bytes.to_string(),
        ]),
    )
    .expect("starting the sender");
    let truth = g.truth().expect("the sender's ground truth");
    (g, truth)
}

/// Starts `flowtop ARGS; echo flowtop-exit=$?` in `t` and waits for its screen.
fn start(t: &Tmux, ctx: &Ctx, args: &str) {
    t.run(&format!(
        "{} {args}; echo flowtop-exit=$?",
        ctx.flowtop.display()
    ));
    // The screen appears once the programs are attached: counting has begun.
    t.wait_for("the header", ctx.timeout, |s| s.contains("every 1s"));
}

/// After a quit: exit status 0 shown by the shell within a second, its prompt
/// back, the terminal as it was (main screen, cursor shown).
fn assert_quit_cleanly(t: &Tmux, pressed: Instant, how: &str) {
    let s = t.wait_for(how, SECOND, |s| {
        s.contains("flowtop-exit=0") && s.trim_end().ends_with(PROMPT)
    });
    assert!(pressed.elapsed() < SECOND, "{how}: {:?}", pressed.elapsed());
    assert!(
        !s.contains("every 1s"),
        "{how}: the screen was left behind:\n{s}"
    );
    assert_eq!(t.format("#{alternate_on}"), "0", "{how}: alternate screen");
    assert_eq!(t.format("#{cursor_flag}"), "1", "{how}: cursor hidden");
}

#[test]
fn screen_shows_exact_bytes_and_every_key_changes_the_view() {
    let ctx = ctx();
    let sink = Gen::spawn(
        &ctx,
        &args(&[
            "--name",
            "ftui-rcv",
            "--conns",
            "2",
            "--hold",
            "tcp-sink",
            "127.0.0.1",
        ]),
    )
    .expect("starting the sink");
    let ready = sink.ready().unwrap();
    let (port, rcv) = (ready.port.expect("sink port"), ready.pid);
    let t = Tmux::new("keys", 120, 30);
    start(&t, &ctx, &format!("-i --units bytes --port {port}"));

    // Exact bytes of both ends.
    let (_snd_gen, snd) = send(&ctx, "ftui-snd", port, 3_000_017);
    let n1 = snd.tx_bytes;
    assert_eq!(n1, 3_000_017);
    t.wait_for("exact bytes of both ends", 5 * SECOND, |s| {
        totals(s, snd.pid) == Some((0, n1)) && totals(s, rcv) == Some((n1, 0))
    });

    // g: the connection, with its addresses.
    t.keys(&["g"]);
    let s = t.wait_for("connections", 2 * SECOND, |s| s.contains("by: conn"));
    let sink_end = format!("127.0.0.1:{port}");
    let snd_row = row(&s, snd.pid).expect("sender's connection row").join(" ");
    assert!(
        snd_row.contains("tcp 127.0.0.1:")
            && snd_row.ends_with(&format!("{sink_end} 0 {n1} 0 {n1} {n1}")),
        "{s}"
    );
    let rcv_row = row(&s, rcv).expect("sink's connection row").join(" ");
    assert!(
        rcv_row.contains(&format!("tcp {sink_end} 127.0.0.1:"))
            && rcv_row.ends_with(&format!("{n1} 0 {n1} 0 {n1}")),
        "{s}"
    );
    for by in ["by: comm", "by: cgroup"] {
        t.keys(&["g"]);
        t.wait_for(by, 2 * SECOND, |s| s.contains(by));
    }
    // g: containers. Both ends run where this test runs (on the host, or in the
    // test's own unit or container): one row has both ends' bytes.
    t.keys(&["g"]);
    let both = format!(" 0 0 {n1} {n1} {}", 2 * n1);
    t.wait_for("both ends in one --by container row", 2 * SECOND, |s| {
        s.contains("by: container") && s.lines().any(|l| words(l).ends_with(&both))
    });
    t.keys(&["g"]);
    t.wait_for("by: pid", 2 * SECOND, |s| s.contains("by: pid"));

    // /: a name leaves only its rows.
    t.keys(&["/"]);
    t.text("ftui-snd");
    t.keys(&["Enter"]);
    // Applied (the status line while typing reads `filter: ftui-snd_`).
    let s = t.wait_for("the filter", 2 * SECOND, |s| {
        s.contains("by: pid  filter: ftui-snd ")
    });
    assert!(row(&s, snd.pid).is_some() && row(&s, rcv).is_none(), "{s}");
    assert!(s.lines().next().unwrap().ends_with(" 1 process"), "{s}");

    // Enter on the sender: its connection, its totals on top.
    t.keys(&["Enter"]);
    let s = t.wait_for("the sender's connections", 2 * SECOND, |s| {
        s.contains(&format!("conn of PID {}", snd.pid))
    });
    assert!(
        s.contains(&format!("PID {} ftui-snd:", snd.pid))
            && s.contains(&format!("since start RX 0 B, TX {n1} B")),
        "{s}"
    );
    let conn = row(&s, snd.pid).expect("the sender's connection");
    // PID COMM PROTO LOCAL REMOTE RX TX RXSUM TXSUM SUM
    assert_eq!(conn[4], sink_end, "{s}");
    assert_eq!(
        (conn[7].as_str(), conn[8].parse::<u64>().ok()),
        ("0", Some(n1)),
        "{s}"
    );
    t.keys(&["Escape"]);
    t.wait_for("back to processes", 2 * SECOND, |s| s.contains("by: pid"));
    t.keys(&["/", "Escape"]);
    t.wait_for("both rows again", 2 * SECOND, |s| {
        row(s, rcv).is_some() && !s.contains("filter:")
    });

    // s / S: the sort key and its order.
    for key in ["rx", "tx", "pid"] {
        t.keys(&["s"]);
        t.wait_for(key, 2 * SECOND, |s| s.contains(&format!("sort: {key}")));
    }
    let order = |s: &str| {
        let at = |pid| s.lines().position(|l| l.starts_with(&format!("{pid} ")));
        at(snd.pid) < at(rcv)
    };
    let s = t.screen();
    assert_eq!(order(&s), snd.pid < rcv, "pid order:\n{s}");
    t.keys(&["S"]);
    let s = t.wait_for("reversed", 2 * SECOND, |s| s.contains("(reversed)"));
    assert_eq!(order(&s), snd.pid > rcv, "reversed pid order:\n{s}");
    t.keys(&["S", "s", "s"]);
    t.wait_for("sort back to total", 2 * SECOND, |s| {
        s.contains("sort: total ")
    });

    // u: bytes -> human -> kb -> bytes.
    t.keys(&["u"]);
    t.wait_for("human units", 2 * SECOND, |s| {
        s.contains(" RXSUM ") && s.contains("MiB")
    });
    t.keys(&["u"]);
    let kb = format!("{:.1}", n1 as f64 / 1024.0);
    t.wait_for("KB", 2 * SECOND, |s| {
        s.contains("RXSUM_KB") && row(s, snd.pid).is_some_and(|r| r[5] == kb)
    });
    t.keys(&["u"]);
    t.wait_for("bytes again", 2 * SECOND, |s| s.contains("RXSUM_BYTES"));
    // t: per-second rates.
    t.keys(&["t"]);
    t.wait_for("rates", 2 * SECOND, |s| s.contains("RX_BYTES/s"));
    t.keys(&["t"]);
    t.wait_for("amounts", 2 * SECOND, |s| {
        s.contains("RX_BYTES ") && !s.contains("/s ")
    });

    // Pause: counting goes on; the screen stays as it was.
    t.keys(&["p"]);
    t.wait_for("paused", 2 * SECOND, |s| s.contains("PAUSED"));
    let (late_gen, late) = send(&ctx, "ftui-late", port, 1_000_003);
    thread::sleep(Duration::from_millis(2500));
    let s = t.screen();
    assert!(row(&s, late.pid).is_none(), "paused screen changed:\n{s}");
    assert_eq!(
        totals(&s, rcv),
        Some((n1, 0)),
        "paused screen changed:\n{s}"
    );

    // Resize while paused: only the resize can redraw, and it re-fits at once.
    t.resize(60, 30);
    let s = t.wait_for("a 60-column fit", SECOND, |s| {
        header(s).contains(&"RX_BYTES") && !header(s).contains(&"SUM_BYTES")
    });
    assert!(s.lines().all(|l| l.chars().count() <= 60), "{s}");
    assert!(row(&s, snd.pid).is_some(), "{s}");
    t.resize(120, 30);
    t.wait_for("120 columns again", SECOND, |s| {
        header(s).contains(&"SUM_BYTES")
    });

    // Resume: the next interval covers the pause, no byte lost.
    t.keys(&["p"]);
    let n2 = late.tx_bytes;
    t.wait_for("the paused bytes", 3 * SECOND, |s| {
        !s.contains("PAUSED") && totals(s, late.pid) == Some((0, n2))
    });
    let sink_truth = sink.truth().unwrap();
    assert_eq!(sink_truth.rx_bytes, n1 + n2);
    t.wait_for("the sink's exact total", 2 * SECOND, |s| {
        totals(s, rcv) == Some((sink_truth.rx_bytes, 0))
    });

    // An exited process: its row dimmed for one interval, then gone; its bytes
    // stay in the since-start totals.
    late_gen.finish().expect("the late sender exits");
    let dim = |s: &str| {
        s.lines().any(|l| {
            l.contains(&format!("{} ", late.pid)) && (l.contains("[2m") || l.contains(";2m"))
        })
    };
    let start = Instant::now();
    while !dim(&t.tmux(&["capture-pane", "-p", "-e", "-t", &t.name])) {
        assert!(
            start.elapsed() < 3 * SECOND,
            "no dimmed row:\n{}",
            t.screen()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let all = n1 + n2;
    let s = t.wait_for("the exited row gone", 3 * SECOND, |s| {
        row(s, late.pid).is_none()
    });
    assert!(
        s.contains(&format!("since start RX {all} B, TX {all} B")),
        "{s}"
    );

    // q: exit 0 within a second, the shell back, the terminal as it was.
    let pressed = Instant::now();
    t.keys(&["q"]);
    assert_quit_cleanly(&t, pressed, "q");
}

#[test]
fn ctrl_c_quits_with_the_terminal_restored() {
    let ctx = ctx();
    let t = Tmux::new("ctrlc", 120, 30);
    start(&t, &ctx, "-i -c ftui-nobody");
    t.keys(&["?"]);
    t.wait_for("the help", SECOND, |s| s.contains("this help"));
    let pressed = Instant::now();
    t.keys(&["C-c"]);
    assert_quit_cleanly(&t, pressed, "Ctrl-C");
}

#[test]
fn count_ends_the_screen_after_count_intervals() {
    let ctx = ctx();
    let t = Tmux::new("count", 120, 30);
    let started = Instant::now();
    start(&t, &ctx, "-i -c ftui-nobody 1 2");
    t.wait_for("the shell after 2 intervals", 5 * SECOND, |s| {
        s.contains("flowtop-exit=0") && s.trim_end().ends_with(PROMPT)
    });
    assert!(started.elapsed() >= 2 * SECOND, "{:?}", started.elapsed());
    assert_eq!(t.format("#{alternate_on}"), "0");
}

#[test]
fn container_rows_and_the_process_in_a_podman_container_are_exact_and_named() {
    let ctx = ctx();
    let image = Image::build("interactive").expect("building the podman image offline");
    let name = format!("ftui-c-{}", std::process::id());
    let t = Tmux::new("container", 140, 30);
    // Only this container's cgroup is counted: it does not exist yet (--wait), so
    // the kernel filter must follow it in once it appears.
    start(
        &t,
        &ctx,
        &format!("-i --by container --show-container --units bytes --container {name} --wait"),
    );
    // In its own network namespace: TCP and UDP between two of its sockets, so it
    // receives every byte it sends; alive after (--hold) until the test ends.
    let (_container, mut gen) = Container::run(
        &ctx,
        &image,
        &name,
        Network::Own,
        &args(&["--wait-go", "--hold", "phases", "3", "400009", "10"]),
    )
    .expect("podman run");
    gen.ready().expect("trafficgen ready in the container");
    // flowtop walks the cgroup tree every 200 ms: let it see the container first.
    thread::sleep(SECOND);
    gen.go_and_hold().unwrap();
    let truth = gen.truth().expect("the container's ground truth");
    assert!(truth.tx_bytes >= 400_009, "{truth:?}");
    let (rx, tx) = (truth.rx_bytes, truth.tx_bytes);
    let sums = format!(" {rx} {tx} {}", rx + tx);
    // by container: one row, by the container's name, with every byte.
    let s = t.wait_for("the container's row", 5 * SECOND, |s| {
        s.lines()
            .any(|l| words(l).starts_with(&format!("{name} podman")) && words(l).ends_with(&sums))
    });
    assert!(s.contains("1 container"), "{s}");
    // g: by pid (after container, the groupings start over), the one process with
    // its container named (--show-container).
    t.keys(&["g"]);
    let s = t.wait_for("the process with its container", 2 * SECOND, |s| {
        s.contains("by: pid")
            && s.lines()
                .any(|l| words(l).contains(&format!(" {name} ")) && words(l).ends_with(&sums))
    });
    assert!(header(&s).contains(&"CONTAINER"), "{s}");
    let pressed = Instant::now();
    t.keys(&["q"]);
    assert_quit_cleanly(&t, pressed, "q");
}
