//! Child processes with readers on their pipes: line collection, timeouts, signals.
//! Shared by the flowtop wrapper and the trafficgen driver.
use std::{
    io::{BufRead as _, BufReader, Read},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        mpsc::{self, Receiver, RecvTimeoutError},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Result};

/// Lines of a child's pipe, collected by a thread; each also goes to a channel.
pub(crate) struct LineCollector {
    lines: Arc<Mutex<Vec<String>>>,
    rx: Receiver<String>,
    handle: Option<JoinHandle<()>>,
}

impl LineCollector {
    pub(crate) fn new(pipe: impl Read + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let store = Arc::clone(&lines);
        let handle = thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                store.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Self {
            lines,
            rx,
            handle: Some(handle),
        }
    }

    /// Waits for a line containing `needle`; None if the pipe closed or time ran out.
    pub(crate) fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// All lines, after the pipe closed (the child exited).
    pub(crate) fn join(mut self) -> Vec<String> {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    pub(crate) fn snapshot(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

/// Waits for `child` to exit for at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to a child.
pub fn send_signal(child: &Child, sig: libc::c_int) -> Result<()> {
    // SAFETY: kill on our own child's pid.
    if unsafe { libc::kill(child.id() as libc::pid_t, sig) } != 0 {
        bail!(
            "kill({}, {sig}): {}",
            child.id(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Runs `cmd` to completion with stdin closed and stdout/stderr captured, at most
/// `limit`; panics if it hangs (a refusal that never comes must fail the test).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let status = wait_timeout(&mut child, limit).unwrap();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} still running after {limit:?}");
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}
