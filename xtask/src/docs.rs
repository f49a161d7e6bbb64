//! `cargo xtask docs`: flowtop.1 and shell completions, generated from the same clap
//! definition the binary parses with (`flowtop::cli::Cli`), so they cannot drift.
//!
//! Default: `target/docs/{man/flowtop.1, completions/{flowtop.bash,_flowtop,flowtop.fish}}`.
//! `--out DIR` writes that layout elsewhere; `--prefix /usr/local` installs into the
//! standard places under a prefix (`share/man/man1`, `share/bash-completion/completions`,
//! `share/zsh/site-functions`, `share/fish/vendor_completions.d`).
use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;
use flowtop::cli::Cli;

#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// Directory for man/ and completions/ [default: target/docs]
    #[arg(long, value_name = "DIR", conflicts_with = "prefix")]
    out: Option<PathBuf>,
    /// Install under this prefix instead (e.g. /usr/local; needs write access)
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
}

/// Where each generated file goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub man: PathBuf,
    pub bash: PathBuf,
    pub zsh: PathBuf,
    pub fish: PathBuf,
}

impl Layout {
    pub fn flat(dir: &Path) -> Self {
        Self {
            man: dir.join("man/flowtop.1"),
            bash: dir.join("completions/flowtop.bash"),
            zsh: dir.join("completions/_flowtop"),
            fish: dir.join("completions/flowtop.fish"),
        }
    }

    pub fn prefix(prefix: &Path) -> Self {
        let share = prefix.join("share");
        Self {
            man: share.join("man/man1/flowtop.1"),
            bash: share.join("bash-completion/completions/flowtop"),
            zsh: share.join("zsh/site-functions/_flowtop"),
            fish: share.join("fish/vendor_completions.d/flowtop.fish"),
        }
    }
}

pub fn run(args: &DocsArgs) -> Result<()> {
    let layout = match (&args.prefix, &args.out) {
        (Some(p), _) => Layout::prefix(p),
        (None, Some(dir)) => Layout::flat(dir),
        (None, None) => Layout::flat(&workspace_root().join("target/docs")),
    };
    generate(&layout)?;
    for p in [&layout.man, &layout.bash, &layout.zsh, &layout.fish] {
        println!("wrote {}", p.display());
    }
    Ok(())
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn generate(layout: &Layout) -> Result<()> {
    write(&layout.man, &man_page()?)?;
    for (shell, path) in [
        (Shell::Bash, &layout.bash),
        (Shell::Zsh, &layout.zsh),
        (Shell::Fish, &layout.fish),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "flowtop", &mut buf);
        write(path, &buf)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// clap_mangen's sections, then EXAMPLES (from `--help`), OUTPUT, ENVIRONMENT and
/// EXIT STATUS written here.
pub fn man_page() -> Result<Vec<u8>> {
    let cmd = Cli::command();
    let examples = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    writeln!(out, ".SH EXAMPLES\n.nf")?;
    for line in examples.lines().filter(|l| !l.starts_with("Examples:")) {
        writeln!(out, "\\&{}", roff_escape(line))?;
    }
    writeln!(out, ".fi")?;
    out.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Backslashes and hyphens as roff wants them (lines are already protected with \&).
fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

const EXTRA_SECTIONS: &str = r#".SH OUTPUT
The table shows one row per process that moved bytes during the interval, busiest
first: RX and TX for this interval (per second with \fB\-\-rate\fR), RXSUM, TXSUM
and SUM since flowtop started. Column names follow \fB\-\-units\fR. A summary line
precedes each table (\fB\-S\fR hides it).
.PP
\fB\-\-by conn\fR adds PROTO, LADDR:LPORT and RADDR:RPORT after PID and COMM;
\fB\-\-by comm\fR shows PROCS COMM; \fB\-\-by cgroup\fR the amounts, then the
CGROUP path. Every output option and format applies to each grouping. A line never
exceeds COLUMNS: names are shortened, then the totals dropped, then addresses and
paths shortened (keeping their end), then the other amounts dropped.
.PP
\fB\-\-format csv\fR and \fB\-\-format json\fR carry exact byte counts with the keys
time, interval, pid, comm, rx_bytes, tx_bytes, rx_total_bytes, tx_total_bytes,
total_bytes, in that order; groupings add (JSON only) by and their fields (proto,
family, laddr, lport, raddr, rport; processes; cgroup, processes); options only append
keys (\fB\-\-rate\fR: seconds, rx_bytes_per_sec, tx_bytes_per_sec;
\fB\-\-show\-nspid\fR: nspid, also an NSPID column after PID in the table). With
\fB\-\-summary\fR, JSON adds one object per interval with only time, interval and a
nested summary object; CSV adds summary columns to every row.
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set and not empty, no colour or bold, even on a terminal.
.TP
\fBCOLUMNS\fR, \fBLINES\fR
Width (and, with \fB\-C\fR, height) the table must fit; the terminal's size otherwise.
.TP
\fBRUST_LOG\fR
Log filter, overriding \fB\-v\fR.
.SH "EXIT STATUS"
.TP
0
Success, also after SIGINT or SIGTERM and when the reader of stdout went away.
.TP
1
flowtop could not run here (privileges, kernel, probes) or failed while running.
.TP
2
Bad command line.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_man_page_and_completions_for_every_flag() {
        let dir = std::env::temp_dir().join(format!("flowtop-docs-{}", std::process::id()));
        let layout = Layout::flat(&dir);
        generate(&layout).unwrap();
        let man = fs::read_to_string(&layout.man).unwrap();
        assert!(man.contains("\n.TH flowtop 1"), "{}", &man[..80]);
        for section in [
            "SYNOPSIS",
            "OPTIONS",
            "EXAMPLES",
            "EXIT STATUS",
            "ENVIRONMENT",
        ] {
            assert!(man.contains(section), "man page lacks {section}");
        }
        for flag in [
            "units",
            "rate",
            "timestamp",
            "no\\-header",
            "clear",
            "format",
            "show\\-nspid",
        ] {
            assert!(
                man.contains(&format!("\\-\\-{flag}")),
                "man page lacks --{flag}"
            );
        }
        assert!(man.contains("jq 'select"), "examples carried over");
        let bash = fs::read_to_string(&layout.bash).unwrap();
        assert!(
            bash.contains("--units") && bash.contains("csv"),
            "bash completion"
        );
        let zsh = fs::read_to_string(&layout.zsh).unwrap();
        assert!(zsh.starts_with("#compdef flowtop"), "zsh completion");
        let fish = fs::read_to_string(&layout.fish).unwrap();
        assert!(fish.contains("-l units"), "fish completion");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefix_layout_uses_the_standard_places() {
        let l = Layout::prefix(Path::new("/usr/local"));
        assert_eq!(l.man, Path::new("/usr/local/share/man/man1/flowtop.1"));
        assert_eq!(
            l.bash,
            Path::new("/usr/local/share/bash-completion/completions/flowtop")
        );
        assert_eq!(
            l.zsh,
            Path::new("/usr/local/share/zsh/site-functions/_flowtop")
        );
        assert_eq!(
            l.fish,
            Path::new("/usr/local/share/fish/vendor_completions.d/flowtop.fish")
        );
    }
}
