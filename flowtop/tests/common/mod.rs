//! Shared by flowtop's integration tests (each test file includes it with `mod common`).
use std::{
    io::{BufRead as _, BufReader},
    process::ChildStderr,
    sync::mpsc,
    time::Duration,
};

/// The `-v` line flowtop logs once its programs are attached and signals handled.
pub const COUNTING: &str = "counting with probe family";

/// Waits until flowtop's `-v` log on `stderr` says it is counting and returns that
/// line. Keeps draining stderr (echoed with a `[flowtop]` prefix, which the test
/// harness shows for failing tests) so flowtop never blocks on it. Panics with the log
/// when flowtop exits first, or after 60 s. `what` names the flowtop in the message.
pub fn wait_until_counting(stderr: ChildStderr, what: &str) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[flowtop] {line}");
            log.push_str(&line);
            log.push('\n');
            if line.contains(COUNTING) {
                let _ = tx.send(Ok(line));
            }
        }
        let _ = tx.send(Err(log));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(line)) => line,
        Ok(Err(log)) => panic!("flowtop {what} exited before counting:\n{log}"),
        Err(_) => panic!("flowtop {what} not counting after 60s"),
    }
}
