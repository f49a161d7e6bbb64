//! A real Prometheus server on loopback (the Debian package `prometheus`), for the
//! checks that an exporter's counters arrive exactly where users read them: the
//! `prometheus` integration test and `cargo xtask release-test`'s container check.
use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command},
};

use anyhow::{Context as _, Result};

use crate::require_tool;

/// A running Prometheus, stopped (SIGTERM, then waited for) however its user ends.
pub struct Prometheus {
    child: Child,
    /// Its HTTP API and UI.
    pub web: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with its config, storage and log in `dir`, scraping each
    /// `(job, address)` every second.
    pub fn start(dir: &Path, targets: &[(&str, SocketAddr)]) -> Result<Prometheus> {
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config)?;
        let web: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()?).into();
        let log = File::create(dir.join("prometheus.log"))?;
        let child = Command::new(require_tool("prometheus", "prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting prometheus")?;
        Ok(Prometheus {
            child,
            web,
            dir: dir.to_path_buf(),
        })
    }

    /// What Prometheus logged so far (for a failure message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A loopback TCP port free at the time of asking.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
