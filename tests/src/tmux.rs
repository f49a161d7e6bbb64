//! A real terminal for `flowtop -i`: a detached tmux session (`new-session -d -x
//! -y`) that the test types into (`send-keys`) and reads (`capture-pane -p`). The
//! sessions run on a tmux server of the tests' own (`-L`, no configuration file),
//! so no user's tmux setup or sessions are touched, and each is killed on drop.
use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::require_tool;

/// The tests' own tmux server.
const SOCKET: &str = "flowtop-tests";
/// The plain shell's prompt, to know when it is back.
pub const PROMPT: &str = "ftui$";

/// One detached tmux session running a plain shell.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// A `width` x `height` terminal with bash (no rc files) at its prompt.
    pub fn new(tag: &str, width: u16, height: u16) -> Tmux {
        require_tool("tmux", "tmux");
        let name = format!("flowtop-test-{}-{tag}", std::process::id());
        let t = Tmux { name };
        t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            &t.name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env",
            &format!("PS1={PROMPT} "),
            "bash",
            "--norc",
            "--noprofile",
        ]);
        t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
            s.contains(PROMPT)
        });
        t
    }

    /// Runs `tmux -L SOCKET ARGS`; panics with its output when it fails.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", SOCKET])
            .args(args)
            .output()
            .expect("running tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys as tmux names them (`Enter`, `Escape`, `C-c`, or one-character text).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Literal text (no key names).
    pub fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.name, "-l", text]);
    }

    /// Types a command line and Enter.
    pub fn run(&self, line: &str) {
        self.text(line);
        self.keys(&["Enter"]);
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    /// A tmux format of the pane (`#{alternate_on}`, `#{cursor_flag}`).
    pub fn format(&self, f: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", &self.name, f])
            .trim()
            .to_string()
    }

    /// Resizes the terminal.
    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            &self.name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Polls the screen until `ok` holds; panics with the last screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: not on screen within {timeout:?}; screen:\n{s}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", SOCKET, "kill-session", "-t", &self.name])
            .status();
    }
}
