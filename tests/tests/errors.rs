//! flowtop's behaviour when it cannot or should not run: exit codes, one clear line on
//! stderr, never a panic or backtrace, prompt exits on signals and on a closed pipe.
use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use flowtop_tests::{
    find_flowtop, output_within, panic_text, require_root, wait_timeout, Ctx, Flowtop, READY_MARKER,
};

fn flowtop() -> PathBuf {
    find_flowtop()
}

fn assert_no_panic(stderr: &str, what: &str) {
    if let Some(t) = panic_text(stderr) {
        panic!("{what}: stderr contains {t:?}:\n{stderr}");
    }
}

#[test]
fn non_root_exits_1_with_one_line_naming_root_and_cap_bpf() {
    require_root(); // to drop to nobody we must start as root
    let out = output_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(flowtop()),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_panic(&stderr, "non-root");
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want exactly one line, got: {stderr}");
    assert!(
        lines[0].contains("root") && lines[0].contains("CAP_BPF"),
        "the line should name root and CAP_BPF: {stderr}"
    );
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for bad in [
        &["0"][..],
        &["-p", "abc"],
        &["--format", "xml"],
        &["1", "2", "3"],
    ] {
        let out = output_within(Command::new(flowtop()).args(bad), Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_panic(&stderr, &format!("{bad:?}"));
        assert_eq!(out.status.code(), Some(2), "{bad:?}: stderr: {stderr}");
        assert!(!stderr.trim().is_empty(), "{bad:?}: no message on stderr");
        assert!(out.stdout.is_empty(), "{bad:?}: stdout {:?}", out.stdout);
    }
}

#[test]
fn serve_refuses_non_loopback_without_the_flag_and_report_options() {
    for (args, says) in [
        (&["--serve", "0.0.0.0:9464"][..], "--serve-public"),
        (&["--serve", "[::]:9464"], "--serve-public"),
        (&["--serve", "9464", "--format", "json"], "--format"),
        (&["--serve", "9464", "5", "3"], "cannot be used"),
        (&["--serve-public"], "--serve"),
    ] {
        assert_exits_2_saying(args, says);
    }
}

/// `flowtop ARGS` exits 2 with a message containing `says`, and prints nothing.
fn assert_exits_2_saying(args: &[&str], says: &str) {
    let out = output_within(Command::new(flowtop()).args(args), Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_no_panic(&err, &format!("{args:?}"));
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn interactive_needs_a_terminal_and_refuses_line_output_options() {
    // stdin is /dev/null and stdout a pipe: no terminal.
    assert_exits_2_saying(
        &["-i"],
        "flowtop: -i needs a terminal on stdin and stdout\n",
    );
    let out = output_within(Command::new(flowtop()).arg("-i"), Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    for (args, says) in [
        (&["-i", "--format", "csv"][..], "--format"),
        (&["-i", "--serve", "9464"], "--serve"),
        (&["-i", "-C"], "--clear"),
    ] {
        assert_exits_2_saying(args, says);
    }
}

#[test]
fn help_ends_with_examples() {
    let out = output_within(
        Command::new(flowtop()).arg("--help"),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    let (_, examples) = help
        .split_once("\nExamples:\n")
        .unwrap_or_else(|| panic!("no Examples section:\n{help}"));
    let lines: Vec<&str> = examples.trim_end().lines().collect();
    assert!(lines.len() >= 3, "too few examples:\n{examples}");
    for l in lines {
        assert!(
            l.trim_start().starts_with("flowtop"),
            "help must end with examples, found {l:?} after Examples:\n{help}"
        );
    }
}

#[test]
fn closed_stdout_pipe_exits_0_quietly() {
    require_root();
    let mut child = Command::new(flowtop())
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    // The reader: take the first line (the summary line, or the header with -S), then
    // close the pipe.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut first = String::new();
        let mut r = BufReader::new(stdout);
        let _ = r.read_line(&mut first);
        drop(r);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let Ok(first) = first else {
        let _ = child.kill();
        panic!("no first line within 30 s");
    };
    assert!(
        first.starts_with("PID") || first.contains("interval 1:"),
        "first line should be the table's summary or header: {first:?}"
    );
    let closed = Instant::now();
    let status = wait_timeout(&mut child, Duration::from_secs(3)).unwrap();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("flowtop still running 3 s after its reader closed the pipe");
    };
    let took = closed.elapsed();
    let stderr = err_t.join().unwrap();
    assert_eq!(status.code(), Some(0), "{status}; stderr: {stderr}");
    assert!(stderr.trim().is_empty(), "not quiet: {stderr}");
    assert!(
        took <= Duration::from_millis(2500),
        "took {took:?} to notice"
    );
}

/// Starts `flowtop -v` (the harness's wrapper waits until it says it is counting),
/// sends `sig` at once, and expects exit 0 within 1 s.
fn exits_0_on(sig: libc::c_int, name: &str) {
    let ctx = Ctx::host(env!("CARGO_BIN_EXE_trafficgen"));
    for attempt in 0..3 {
        let ft = Flowtop::builder(&ctx)
            .stdout(Stdio::null())
            .start()
            .expect("flowtop starts");
        let run = ft
            .stop_with(sig)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_no_panic(&run.stderr, name);
        assert_eq!(
            run.status.code(),
            Some(0),
            "attempt {attempt}: {name} sent right after {READY_MARKER:?}: {} after {:?}; \
             stderr:\n{}",
            run.status,
            run.exit_after,
            run.stderr
        );
        assert!(
            run.exit_after <= Duration::from_secs(1),
            "{name}: exit took {:?}",
            run.exit_after
        );
    }
}

#[test]
fn sigint_exits_0_within_a_second() {
    exits_0_on(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_exits_0_within_a_second() {
    exits_0_on(libc::SIGTERM, "SIGTERM");
}
