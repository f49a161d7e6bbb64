//! Driving `trafficgen`: spawn it, wait for its ready line, release it, read its
//! ground-truth line (what its own syscalls returned). The one traffic generator of
//! every integration test: each kind of traffic is a trafficgen mode, never a helper
//! written in another language or a re-run of the test binary.
use std::{
    io::Write as _,
    process::{Child, ChildStdin, Command, Stdio},
    time::Duration,
};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use serde::Deserialize;

use crate::{
    child::{wait_timeout, LineCollector},
    Ctx,
};

/// trafficgen's ground-truth line.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Truth {
    pub pid: u32,
    pub comm: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    #[serde(default)]
    pub parent_pid: Option<u32>,
    /// `trafficgen conns`: one entry per socket end.
    #[serde(default)]
    pub conns: Vec<ConnTruth>,
}

/// One socket end of `trafficgen conns`, with what its own syscalls returned.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConnTruth {
    pub proto: String,
    pub laddr: String,
    pub lport: u16,
    /// None: an unconnected socket (the UDP server).
    pub raddr: Option<String>,
    pub rport: Option<u16>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A running trafficgen.
pub struct Gen {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<LineCollector>,
    stderr: Option<LineCollector>,
    /// Words of the wrapper command line (see [`Gen::spawn_in`]); 0: none.
    wrappers: usize,
    /// The ready line once seen: [`Gen::ready`] may be asked again.
    ready: std::cell::OnceCell<Ready>,
    timeout: Duration,
}

/// What `trafficgen: ready ...` said.
#[derive(Debug, Clone)]
pub struct Ready {
    pub pid: u32,
    pub port: Option<u16>,
    /// The whole line, for mode-specific fields (see [`Ready::field`]).
    pub line: String,
}

impl Ready {
    /// The value of ` NAME=VALUE` on the ready line.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    }
}

impl Gen {
    pub fn spawn(ctx: &Ctx, args: &[String]) -> Result<Gen> {
        Self::spawn_in(ctx, &[] as &[&str], args)
    }

    /// trafficgen started by `wrapper`, a command line that runs its arguments (e.g.
    /// `unshare --pid --fork ...`): [`Gen::host_pid`] then finds trafficgen's own PID
    /// at the end of the wrapper's chain of single children.
    pub fn spawn_in<W: AsRef<str>, S: AsRef<str>>(
        ctx: &Ctx,
        wrapper: &[W],
        args: &[S],
    ) -> Result<Gen> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let what = format!("trafficgen {}", args.join(" "));
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program.as_ref());
                cmd.args(rest.iter().map(AsRef::as_ref))
                    .arg(&ctx.trafficgen);
                cmd
            }
            None => Command::new(&ctx.trafficgen),
        };
        let mut child = cmd
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {what} (wrapper {:?})",
                    wrapper.first().map(AsRef::as_ref)
                )
            })?;
        Ok(Gen {
            what,
            stdin: child.stdin.take(),
            stdout: Some(LineCollector::new(child.stdout.take().unwrap())),
            stderr: Some(LineCollector::new(child.stderr.take().unwrap())),
            child,
            wrappers: wrapper.len(),
            ready: std::cell::OnceCell::new(),
            timeout: ctx.timeout,
        })
    }

    /// trafficgen's PID on this host: the child itself, or, under a wrapper, the end
    /// of the chain of single children below it (its ready line's `pid=` is then the
    /// PID in its own namespace). Ask after [`Gen::ready`], once the chain exists.
    pub fn host_pid(&self) -> Result<u32> {
        let mut pid = self.child.id();
        if self.wrappers > 0 {
            while let Some(c) = only_child(pid)? {
                pid = c;
            }
            ensure!(
                pid != self.child.id(),
                "{}: the wrapper {pid} has no child",
                self.what
            );
        }
        Ok(pid)
    }

    /// Waits for `trafficgen: ready pid=P [port=N]` (once; later calls return it again).
    pub fn ready(&self) -> Result<Ready> {
        if let Some(r) = self.ready.get() {
            return Ok(r.clone());
        }
        let line = self
            .stderr
            .as_ref()
            .unwrap()
            .wait_for("trafficgen: ready", self.timeout)
            .ok_or_else(|| {
                anyhow!(
                    "{}: no ready line within {:?}; stderr:\n{}",
                    self.what,
                    self.timeout,
                    self.stderr.as_ref().unwrap().snapshot()
                )
            })?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
        };
        let pid = field("pid=")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no pid in {line:?}"))?;
        let port = field("port=").and_then(|p| p.parse().ok());
        Ok(self.ready.get_or_init(|| Ready { pid, port, line }).clone())
    }

    /// Ends `--wait-go` (and closes stdin, which also ends `--hold`).
    pub fn go(&mut self) -> Result<()> {
        self.go_and_hold()?;
        self.stdin = None;
        Ok(())
    }

    /// Ends `--wait-go` and keeps stdin open: with `--hold`, trafficgen stays alive
    /// after its traffic until [`Gen::finish`].
    pub fn go_and_hold(&mut self) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("go sent after stdin was closed")?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// The ground truth as soon as trafficgen printed it (with `--hold` it is still
    /// alive then); [`Gen::finish`] checks its exit afterwards.
    pub fn truth(&self) -> Result<Truth> {
        let line = self
            .stdout
            .as_ref()
            .unwrap()
            .wait_for("\"pid\":", self.timeout)
            .ok_or_else(|| {
                anyhow!(
                    "{}: no ground-truth line within {:?}; stderr:\n{}",
                    self.what,
                    self.timeout,
                    self.stderr.as_ref().unwrap().snapshot()
                )
            })?;
        serde_json::from_str(&line).with_context(|| format!("{}: parsing {line:?}", self.what))
    }

    /// Waits for exit status 0 and returns the ground truth line.
    pub fn finish(mut self) -> Result<Truth> {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, self.timeout)?;
        let stderr = self.stderr.take().unwrap();
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!(
                "{}: still running after {:?}; stderr:\n{}",
                self.what,
                self.timeout,
                stderr.join().join("\n")
            );
        };
        let out = self.stdout.take().unwrap().join();
        let err = stderr.join().join("\n");
        ensure!(
            status.success(),
            "{}: exited with {status}; stderr:\n{err}",
            self.what
        );
        ensure!(
            out.len() == 1,
            "{}: expected one ground-truth line, got {out:?}; stderr:\n{err}",
            self.what
        );
        serde_json::from_str(&out[0])
            .with_context(|| format!("{}: parsing {:?}", self.what, out[0]))
    }
}

impl Drop for Gen {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The one child of single-threaded process `pid`, from /proc (None: no child).
fn only_child(pid: u32) -> Result<Option<u32>> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let list = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let children: Vec<u32> = list
        .split_whitespace()
        .map(|c| c.parse().context("a PID"))
        .collect::<Result<_>>()?;
    ensure!(children.len() <= 1, "{pid} has children {children:?}");
    Ok(children.first().copied())
}

/// `HOST:PORT` for a listen address as trafficgen takes it.
pub fn target(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Owned arguments from string literals.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
