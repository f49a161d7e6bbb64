//! The one wrapper around a running flowtop process: start it (`-v --probe P`, plus
//! `--format json` unless the test asks for raw output), wait until its programs are
//! attached, stop it with a signal and collect what it printed. Every integration
//! test that runs flowtop as a process goes through [`Flowtop`], so readiness,
//! timeouts, environment hygiene and the "no panic on stderr" check are written once.
use std::{
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    child::{send_signal, wait_timeout, LineCollector},
    rows::Row,
    Ctx,
};

/// What flowtop logs (with `-v`) once its programs are attached.
pub const READY_MARKER: &str = "counting with probe family";

/// Text that must never appear on flowtop's stderr.
pub fn panic_text(stderr: &str) -> Option<&'static str> {
    [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "thread 'main'",
    ]
    .into_iter()
    .find(|t| stderr.contains(t))
}

/// How to start a flowtop: [`Flowtop::builder`], then [`FlowtopBuilder::start`].
pub struct FlowtopBuilder {
    program: std::path::PathBuf,
    wrapper: Vec<String>,
    probe: String,
    timeout: Duration,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    json: bool,
    stdout: Option<Stdio>,
}

impl FlowtopBuilder {
    /// More command-line arguments.
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// An environment variable (COLUMNS, LINES, NO_COLOR and RUST_LOG are removed
    /// otherwise, so the caller's terminal cannot change the output).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Run flowtop through `wrapper`, a command line that execs its arguments in
    /// place (e.g. `setpriv --reuid nobody ... --`), so that [`Flowtop::pid`] and
    /// the signals it is sent still reach flowtop itself.
    pub fn via<S: AsRef<str>>(mut self, wrapper: &[S]) -> Self {
        self.wrapper = wrapper.iter().map(|a| a.as_ref().to_string()).collect();
        self
    }

    /// Do not add `--format json`: the arguments choose the format, and the run's
    /// [`FlowtopRun::text`] is what to read (its `rows` stay empty).
    pub fn raw(mut self) -> Self {
        self.json = false;
        self
    }

    /// flowtop's stdout goes there instead of to a pipe this harness reads (for a
    /// test that owns the pipe); the run's text is then empty.
    pub fn stdout(mut self, out: Stdio) -> Self {
        self.stdout = Some(out);
        self
    }

    /// Starts flowtop and waits for [`READY_MARKER`] on its stderr.
    pub fn start(self) -> Result<Flowtop> {
        let mut cmd = match self.wrapper.split_first() {
            Some((wrapper, rest)) => {
                let mut cmd = Command::new(wrapper);
                cmd.args(rest).arg(&self.program);
                cmd
            }
            None => Command::new(&self.program),
        };
        cmd.arg("-v").args(["--probe", &self.probe]);
        if self.json {
            cmd.args(["--format", "json"]);
        }
        for var in ["RUST_LOG", "COLUMNS", "LINES", "NO_COLOR"] {
            cmd.env_remove(var);
        }
        let piped = self.stdout.is_none();
        let mut child = cmd
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.stdout.unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let stdout = piped.then(|| LineCollector::new(child.stdout.take().unwrap()));
        let stderr = LineCollector::new(child.stderr.take().unwrap());
        let mut ft = Flowtop {
            child,
            stdout,
            stderr: Some(stderr),
            timeout: self.timeout,
            json: self.json,
            ready_line: String::new(),
        };
        let started = Instant::now();
        match ft
            .stderr
            .as_ref()
            .unwrap()
            .wait_for(READY_MARKER, self.timeout)
        {
            Some(line) => ft.ready_line = line,
            None => {
                // Either time ran out or stderr closed because flowtop exited: say which.
                let exited = wait_timeout(&mut ft.child, Duration::from_secs(2))?;
                let _ = ft.child.kill();
                let _ = ft.child.wait();
                let text = ft.stderr.take().unwrap().join().join("\n");
                let how = match exited {
                    Some(st) => format!("exited ({st}) after {:?}", started.elapsed()),
                    None => format!("still not ready after {:?}", self.timeout),
                };
                bail!(
                    "flowtop --probe {} {:?} never logged {READY_MARKER:?}: {how}; stderr:\n{text}",
                    self.probe,
                    self.args,
                );
            }
        }
        Ok(ft)
    }
}

/// A running flowtop.
pub struct Flowtop {
    child: Child,
    stdout: Option<LineCollector>,
    stderr: Option<LineCollector>,
    timeout: Duration,
    json: bool,
    ready_line: String,
}

impl Flowtop {
    /// flowtop with `--probe ctx.probe`, `-v` and `--format json`, nothing else yet.
    pub fn builder(ctx: &Ctx) -> FlowtopBuilder {
        FlowtopBuilder {
            program: ctx.flowtop.clone(),
            wrapper: Vec::new(),
            probe: ctx.probe.clone(),
            timeout: ctx.timeout,
            args: Vec::new(),
            envs: ctx
                .program_kind
                .iter()
                .map(|k| ("FLOWTOP_PROGRAM_KIND".to_string(), k.clone()))
                .collect(),
            json: true,
            stdout: None,
        }
    }

    /// Starts `flowtop --format json` with `extra` arguments and waits until it counts.
    pub fn start(ctx: &Ctx, extra: &[String]) -> Result<Flowtop> {
        Self::builder(ctx).args(extra).start()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `-v` line that said flowtop counts (with `--serve`, it names the address).
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Waits (at most the run's timeout) for a line of its stderr (`-v` logs)
    /// containing `needle`, logged after the ready line: for a test that must know
    /// flowtop saw something (e.g. `counting cgroup DIR`) before it moves bytes.
    pub fn wait_for_log(&self, needle: &str) -> Result<String> {
        let stderr = self.stderr.as_ref().expect("stderr is read until stop");
        stderr.wait_for(needle, self.timeout).with_context(|| {
            format!(
                "flowtop never logged {needle:?} within {:?}; stderr:\n{}",
                self.timeout,
                stderr.snapshot()
            )
        })
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGINT, then collect everything it printed.
    pub fn stop(self) -> Result<FlowtopRun> {
        self.stop_with(libc::SIGINT)
    }

    /// `signal` (SIGINT, SIGTERM), then collect everything it printed.
    pub fn stop_with(mut self, signal: libc::c_int) -> Result<FlowtopRun> {
        send_signal(&self.child, signal)?;
        let timeout = self.timeout;
        self.collect(timeout)
    }

    /// Waits (at most `timeout`) for flowtop to exit by itself (COUNT reached).
    pub fn wait(mut self, timeout: Duration) -> Result<FlowtopRun> {
        self.collect(timeout)
    }

    fn collect(&mut self, timeout: Duration) -> Result<FlowtopRun> {
        let started = Instant::now();
        let status = wait_timeout(&mut self.child, timeout)?;
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!(
                "flowtop did not exit within {timeout:?}; stderr:\n{}",
                self.stderr.as_ref().unwrap().snapshot()
            );
        };
        let exit_after = started.elapsed();
        let lines = self.stdout.take().map(|s| s.join()).unwrap_or_default();
        let stderr = self.stderr.take().unwrap().join().join("\n");
        let run = FlowtopRun {
            status,
            exit_after,
            rows: Vec::new(),
            losses: Vec::new(),
            bad_lines: Vec::new(),
            stderr,
            text: String::new(),
        };
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        Ok(match self.json {
            true => run.with_json_stdout(&text),
            false => FlowtopRun { text, ..run },
        })
    }
}

impl Drop for Flowtop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything one flowtop run printed.
#[derive(Debug)]
pub struct FlowtopRun {
    pub status: ExitStatus,
    /// From the stop request (or wait) to exit.
    pub exit_after: Duration,
    /// JSON runs: the stdout lines that are rows.
    pub rows: Vec<Row>,
    /// JSON runs: the `loss` objects flowtop prints after an interval that lost
    /// bytes or calls (not rows; their figures are under the `loss` key).
    pub losses: Vec<serde_json::Value>,
    /// JSON runs: stdout lines that were not a valid row.
    pub bad_lines: Vec<String>,
    pub stderr: String,
    /// Everything on stdout, as printed.
    pub text: String,
}

impl FlowtopRun {
    /// This run with `text` as its stdout, parsed as JSON Lines rows (for a test that
    /// read flowtop's stdout itself, see [`FlowtopBuilder::stdout`]).
    pub fn with_json_stdout(self, text: &str) -> FlowtopRun {
        let mut rows = Vec::new();
        let mut losses = Vec::new();
        let mut bad_lines = Vec::new();
        for l in text.lines() {
            match serde_json::from_str::<Row>(l) {
                Ok(r) => rows.push(r),
                Err(_) => match serde_json::from_str::<serde_json::Value>(l) {
                    Ok(v) if v.get("loss").is_some() => losses.push(v),
                    _ => bad_lines.push(l.to_string()),
                },
            }
        }
        FlowtopRun {
            rows,
            losses,
            bad_lines,
            text: text.to_string(),
            ..self
        }
    }

    /// Its stdout as JSON Lines values, for the keys the typed [`Row`] does not
    /// carry (`--by container` rows have no PID); panics on a line that is not JSON.
    pub fn values(&self) -> Vec<serde_json::Value> {
        crate::json_values(&self.text)
    }

    /// Problems with the run as a whole: exit status, unparsable lines, panics.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.status.success() {
            p.push(format!("flowtop exited with {}", self.status));
        }
        if !self.bad_lines.is_empty() {
            p.push(format!("unparsable stdout lines: {:?}", self.bad_lines));
        }
        if let Some(t) = panic_text(&self.stderr) {
            p.push(format!("stderr contains {t:?}"));
        }
        p
    }

    /// Panics unless the run ended well: exit 0, no panic text (for tests that read
    /// the raw text rather than [`crate::check`] the rows).
    pub fn assert_clean(&self) {
        let p = self.problems();
        assert!(p.is_empty(), "{p:?}\nflowtop stderr:\n{}", self.stderr);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    #[test]
    fn loss_objects_are_kept_apart_from_rows_and_garbage_is_a_problem() {
        let run = FlowtopRun {
            status: ExitStatus::from_raw(0),
            exit_after: Duration::ZERO,
            rows: Vec::new(),
            losses: Vec::new(),
            bad_lines: Vec::new(),
            stderr: String::new(),
            text: String::new(),
        };
        let text = concat!(
            r#"{"time":"2026-12-03T15:59:24.271Z","interval":1,"pid":7,"comm":"a","rx_bytes":1,"tx_bytes":2,"rx_total_bytes":1,"tx_total_bytes":2,"total_bytes":3}"#,
            "\n",
            r#"{"time":"2026-12-03T15:59:24.271Z","interval":1,"loss":{"unrecorded_rx_bytes":0,"unrecorded_tx_bytes":0,"unrecorded_bytes":0,"skipped_calls":5}}"#,
            "\nnot json\n"
        );
        let run = run.with_json_stdout(text);
        assert_eq!(run.rows.len(), 1);
        assert_eq!(run.losses.len(), 1);
        assert_eq!(run.losses[0]["loss"]["skipped_calls"], 5);
        assert_eq!(run.bad_lines, ["not json"]);
        assert_eq!(run.problems().len(), 1, "{:?}", run.problems());
    }
}
