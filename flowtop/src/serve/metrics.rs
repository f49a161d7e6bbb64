//! Pure: the exporter's counters and their text in the Prometheus exposition format
//! (0.0.4) or OpenMetrics 1.0.
//!
//! Counters only ever grow: every read adds the kernel's exact deltas to the series
//! they belong to (a process that exited keeps its bytes in its `comm`/`container`
//! series). A series that moved no bytes for `--series-ttl` is dropped, so a node
//! where pods come and go keeps flat memory; Prometheus treats a counter that
//! disappears as ended, and one that comes back as restarted from zero.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use crate::{
    collect::{exporter::Update, Bytes},
    container::{path::Runtime, Identity},
};

/// Which text a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// `text/plain; version=0.0.4`
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Exposition {
    /// From the scrape's Accept header: OpenMetrics when it is asked for (and not with
    /// `q=0`), else the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let asks = accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !params.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if asks {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The labels of one byte counter series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub comm: String,
    /// The container's (or unit's) name, else its id's first 12 digits; empty for
    /// host processes.
    pub container: String,
    pub pod: String,
    pub namespace: String,
    /// Only with `--metrics-cgroup-label` (paths with ids are unbounded).
    pub cgroup: Option<String>,
    /// Only with `--metrics-pid-label`.
    pub pid: Option<u32>,
}

/// The `container` label of `who`.
fn container_label(who: Option<&Identity>) -> String {
    match who {
        None => String::new(),
        Some(w) if w.runtime == Some(Runtime::Host) => String::new(),
        Some(w) => w.label().unwrap_or_default().to_string(),
    }
}

/// Fixed facts about this flowtop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub family: String,
    pub kind: String,
    pub version: String,
    /// `--max-entries`: the capacity of both maps.
    pub capacity: u32,
    pub pid_label: bool,
    /// `--metrics-cgroup-label`.
    pub cgroup_label: bool,
    /// `--series-ttl`: a series idle this long is dropped.
    pub series_ttl: Duration,
}

/// One series' counters and when they last grew.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Series {
    bytes: Bytes,
    last_moved: Instant,
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    info: Info,
    series: BTreeMap<SeriesKey, Series>,
    unrecorded_procs: Bytes,
    unrecorded_flows: Bytes,
    proc_keys: u64,
    flow_keys: u64,
    /// Socket calls the kernel skipped flowtop's programs for, since start.
    skipped_calls: u64,
    reads: u64,
}

impl Metrics {
    pub fn new(info: Info) -> Self {
        Self {
            info,
            series: BTreeMap::new(),
            unrecorded_procs: Bytes::default(),
            unrecorded_flows: Bytes::default(),
            proc_keys: 0,
            flow_keys: 0,
            skipped_calls: 0,
            reads: 0,
        }
    }

    /// Adds one read's deltas.
    pub fn apply(&mut self, u: &Update) {
        self.apply_at(u, Instant::now());
    }

    /// [`Self::apply`] at `now`: series idle for `--series-ttl` are dropped.
    pub fn apply_at(&mut self, u: &Update, now: Instant) {
        for f in &u.flows {
            let who = f.who.as_deref();
            let key = SeriesKey {
                comm: f.comm.clone(),
                container: container_label(who),
                pod: who.and_then(|w| w.pod.clone()).unwrap_or_default(),
                namespace: who.and_then(|w| w.namespace.clone()).unwrap_or_default(),
                cgroup: self.info.cgroup_label.then(|| f.cgroup.clone()),
                pid: self.info.pid_label.then_some(f.pid),
            };
            let e = self.series.entry(key).or_insert(Series {
                bytes: Bytes::default(),
                last_moved: now,
            });
            add(&mut e.bytes, f.bytes);
            if f.bytes.total() > 0 {
                e.last_moved = now;
            }
        }
        let ttl = self.info.series_ttl;
        self.series
            .retain(|_, s| now.saturating_duration_since(s.last_moved) < ttl);
        add(&mut self.unrecorded_procs, u.unrecorded_procs);
        add(&mut self.unrecorded_flows, u.unrecorded_flows);
        self.proc_keys = u.proc_keys;
        self.flow_keys = u.flow_keys;
        self.skipped_calls += u.skipped_calls;
        self.reads += 1;
    }

    /// Series of the byte counters so far.
    #[cfg(test)]
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// The page a scrape gets.
    pub fn render(&self, fmt: Exposition) -> String {
        let mut out = String::with_capacity(256 + self.series.len() * 160);
        let w = &mut out;
        for (name, help, dir) in [
            (
                "flowtop_rx_bytes",
                "Bytes received by processes' TCP and UDP sockets (payload), counted \
                 exactly in the kernel since flowtop started",
                Dir::Rx,
            ),
            (
                "flowtop_tx_bytes",
                "Bytes sent by processes' TCP and UDP sockets (payload), counted \
                 exactly in the kernel since flowtop started",
                Dir::Tx,
            ),
        ] {
            header(w, fmt, name, "counter", help, Some("bytes"));
            for (k, s) in &self.series {
                let b = &s.bytes;
                let mut labels = vec![
                    ("comm", k.comm.as_str()),
                    ("container", k.container.as_str()),
                    ("pod", k.pod.as_str()),
                    ("namespace", k.namespace.as_str()),
                ];
                if let Some(cg) = &k.cgroup {
                    labels.push(("cgroup", cg));
                }
                let pid = k.pid.map(|p| p.to_string());
                if let Some(p) = &pid {
                    labels.push(("pid", p));
                }
                sample(w, &format!("{name}_total"), &labels, dir.of(b));
            }
        }
        header(
            w,
            fmt,
            "flowtop_unrecorded_bytes",
            "counter",
            "Bytes the kernel programs saw but could not store because a map was full \
             (map=flow: missing from flowtop_rx/tx_bytes_total; raise --max-entries)",
            Some("bytes"),
        );
        for (map, b) in [
            ("process", self.unrecorded_procs),
            ("flow", self.unrecorded_flows),
        ] {
            for dir in [Dir::Rx, Dir::Tx] {
                sample(
                    w,
                    "flowtop_unrecorded_bytes_total",
                    &[("map", map), ("direction", dir.name())],
                    dir.of(&b),
                );
            }
        }
        header(
            w,
            fmt,
            "flowtop_skipped_calls",
            "counter",
            "Socket calls the kernel did not run flowtop's programs for (the program was \
             still running on that CPU, e.g. preempted): their bytes are not counted",
            None,
        );
        sample(w, "flowtop_skipped_calls_total", &[], self.skipped_calls);
        header(
            w,
            fmt,
            "flowtop_map_keys",
            "gauge",
            "Keys in flowtop's kernel maps at the last read",
            None,
        );
        for (map, n) in [("process", self.proc_keys), ("flow", self.flow_keys)] {
            sample(w, "flowtop_map_keys", &[("map", map)], n);
        }
        header(
            w,
            fmt,
            "flowtop_map_capacity",
            "gauge",
            "Capacity of flowtop's kernel maps (--max-entries)",
            None,
        );
        for map in ["process", "flow"] {
            sample(
                w,
                "flowtop_map_capacity",
                &[("map", map)],
                u64::from(self.info.capacity),
            );
        }
        header(
            w,
            fmt,
            "flowtop_series",
            "gauge",
            "Label sets of flowtop_rx/tx_bytes_total (one that moved no bytes for \
             --series-ttl is removed)",
            None,
        );
        sample(w, "flowtop_series", &[], self.series.len() as u64);
        header(
            w,
            fmt,
            "flowtop_reads",
            "counter",
            "Reads of the kernel maps (one per scrape and one per second)",
            None,
        );
        sample(w, "flowtop_reads_total", &[], self.reads);
        let (probe_type, probe_help) = match fmt {
            Exposition::OpenMetrics => ("info", "The kernel hooks flowtop counts with"),
            Exposition::Prometheus => ("gauge", "The kernel hooks flowtop counts with (always 1)"),
        };
        header(w, fmt, "flowtop_probe", probe_type, probe_help, None);
        sample(
            w,
            "flowtop_probe_info",
            &[
                ("family", &self.info.family),
                ("kind", &self.info.kind),
                ("version", &self.info.version),
            ],
            1,
        );
        if fmt == Exposition::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Rx,
    Tx,
}

impl Dir {
    fn of(self, b: &Bytes) -> u64 {
        match self {
            Dir::Rx => b.rx,
            Dir::Tx => b.tx,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dir::Rx => "rx",
            Dir::Tx => "tx",
        }
    }
}

fn add(a: &mut Bytes, d: Bytes) {
    a.rx += d.rx;
    a.tx += d.tx;
}

/// `# HELP`/`# TYPE` (and `# UNIT` in OpenMetrics). `family` is the metric family's
/// name without `_total`/`_info`: the Prometheus text format names counters and the
/// info gauge by their sample names instead.
fn header(
    w: &mut String,
    fmt: Exposition,
    family: &str,
    kind: &str,
    help: &str,
    unit: Option<&str>,
) {
    let name = match (fmt, kind) {
        (Exposition::Prometheus, "counter") => format!("{family}_total"),
        (Exposition::Prometheus, _) if family == "flowtop_probe" => format!("{family}_info"),
        _ => family.to_string(),
    };
    let _ = writeln!(w, "# HELP {name} {}", escape_help(help, fmt));
    let _ = writeln!(w, "# TYPE {name} {kind}");
    if let (Exposition::OpenMetrics, Some(u)) = (fmt, unit) {
        let _ = writeln!(w, "# UNIT {name} {u}");
    }
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    w.push_str(name);
    if !labels.is_empty() {
        w.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            let _ = write!(w, "{k}=\"{}\"", escape_label(v));
        }
        w.push('}');
    }
    let _ = writeln!(w, " {value}");
}

/// Label values: backslash, double quote and line feed escaped (both formats).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: backslash and line feed escaped (OpenMetrics: double quotes too).
pub fn escape_help(v: &str, fmt: Exposition) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if fmt == Exposition::OpenMetrics => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::exporter::FlowBytes;

    fn info(pid_label: bool) -> Info {
        Info {
            family: "tracepoint".into(),
            kind: "tp_btf".into(),
            version: "0.1.0".into(),
            capacity: 16384,
            pid_label,
            cgroup_label: true,
            series_ttl: Duration::from_secs(600),
        }
    }

    fn flow(pid: u32, comm: &str, cgroup: &str, rx: u64, tx: u64) -> FlowBytes {
        FlowBytes {
            pid,
            comm: comm.into(),
            cgroup: cgroup.into(),
            who: None,
            bytes: Bytes { rx, tx },
        }
    }

    fn update(flows: Vec<FlowBytes>) -> Update {
        Update {
            flows,
            proc_keys: 3,
            flow_keys: 2,
            ..Default::default()
        }
    }

    #[test]
    fn skipped_calls_add_up_across_reads() {
        let mut m = Metrics::new(info(false));
        let t = m.render(Exposition::Prometheus);
        assert!(t.contains("\nflowtop_skipped_calls_total 0\n"), "{t}");
        for n in [5, 0, 7] {
            m.apply(&Update {
                skipped_calls: n,
                ..update(vec![])
            });
        }
        let t = m.render(Exposition::Prometheus);
        assert!(
            t.contains("# TYPE flowtop_skipped_calls_total counter\n"),
            "{t}"
        );
        assert!(t.contains("\nflowtop_skipped_calls_total 12\n"), "{t}");
    }

    #[test]
    fn prometheus_text_has_help_type_and_escaped_labels() {
        let mut m = Metrics::new(info(false));
        m.apply(&update(vec![
            flow(1, "we\"ird\\name\n", "/a.slice/b\"c.service", 10, 20),
            flow(2, "curl", "/", 1, 2),
        ]));
        let t = m.render(Exposition::Prometheus);
        assert!(t.contains(
            "# HELP flowtop_rx_bytes_total Bytes received by processes' TCP and UDP sockets"
        ));
        assert!(t.contains("# TYPE flowtop_rx_bytes_total counter\n"), "{t}");
        assert!(t.contains("# TYPE flowtop_tx_bytes_total counter\n"), "{t}");
        assert!(t.contains("# TYPE flowtop_map_keys gauge\n"), "{t}");
        assert!(t.contains("# TYPE flowtop_probe_info gauge\n"), "{t}");
        assert!(
            t.contains(
                "flowtop_rx_bytes_total{comm=\"we\\\"ird\\\\name\\n\",container=\"\",pod=\"\",\
                 namespace=\"\",cgroup=\"/a.slice/b\\\"c.service\"} 10\n"
            ),
            "{t}"
        );
        assert!(t.contains("flowtop_tx_bytes_total{comm=\"curl\",container=\"\",pod=\"\",namespace=\"\",cgroup=\"/\"} 2\n"));
        assert!(t.contains("flowtop_unrecorded_bytes_total{map=\"flow\",direction=\"tx\"} 0\n"));
        assert!(t.contains("flowtop_map_keys{map=\"process\"} 3\n"));
        assert!(t.contains("flowtop_map_capacity{map=\"flow\"} 16384\n"));
        assert!(t.contains(
            "flowtop_probe_info{family=\"tracepoint\",kind=\"tp_btf\",version=\"0.1.0\"} 1\n"
        ));
        assert!(!t.contains("# EOF") && !t.contains("# UNIT") && !t.contains("pid="));
        // Every sample line follows a TYPE line for its name.
        let mut typed = Vec::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
            }
        }
    }

    #[test]
    fn openmetrics_names_families_without_suffixes_and_ends_with_eof() {
        let mut m = Metrics::new(info(true));
        m.apply(&update(vec![flow(
            42,
            "nginx",
            "/system.slice/nginx.service",
            5,
            6,
        )]));
        let t = m.render(Exposition::OpenMetrics);
        assert!(t.contains("# TYPE flowtop_rx_bytes counter\n# UNIT flowtop_rx_bytes bytes\n"));
        assert!(t.contains(
            "flowtop_rx_bytes_total{comm=\"nginx\",container=\"\",pod=\"\",namespace=\"\",\
             cgroup=\"/system.slice/nginx.service\",\
             pid=\"42\"} 5\n"
        ));
        assert!(t.contains("# TYPE flowtop_probe info\n"), "{t}");
        assert!(t.ends_with("# EOF\n"));
        assert_eq!(
            escape_help("a\"b\\c\nd", Exposition::OpenMetrics),
            "a\\\"b\\\\c\\nd"
        );
        assert_eq!(escape_help("a\"b", Exposition::Prometheus), "a\"b");
    }

    #[test]
    fn counters_only_grow_and_keep_exited_processes() {
        let mut m = Metrics::new(info(false));
        m.apply(&update(vec![
            flow(1, "a", "/", 10, 0),
            flow(2, "a", "/", 5, 1),
        ]));
        // pid 1 exited; pid 3 has the same name: one series, the sum.
        m.apply(&update(vec![flow(3, "a", "/", 1, 1)]));
        m.apply(&update(vec![]));
        assert_eq!(m.series(), 1);
        let t = m.render(Exposition::Prometheus);
        assert!(
            t.contains("flowtop_rx_bytes_total{comm=\"a\",container=\"\",pod=\"\",namespace=\"\",cgroup=\"/\"} 16\n"),
            "{t}"
        );
        assert!(
            t.contains("flowtop_tx_bytes_total{comm=\"a\",container=\"\",pod=\"\",namespace=\"\",cgroup=\"/\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("flowtop_reads_total 3\n"));
        let mut u = update(vec![]);
        u.unrecorded_flows = Bytes { rx: 7, tx: 0 };
        m.apply(&u);
        m.apply(&u);
        let t = m.render(Exposition::Prometheus);
        assert!(t.contains("flowtop_unrecorded_bytes_total{map=\"flow\",direction=\"rx\"} 14\n"));
    }

    #[test]
    fn negotiates_openmetrics_only_when_asked() {
        use Exposition::*;
        let prom2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(prom2)), OpenMetrics);
        assert_eq!(Exposition::negotiate(Some("text/plain")), Prometheus);
        assert_eq!(Exposition::negotiate(None), Prometheus);
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text; q=0")),
            Prometheus
        );
    }

    #[test]
    fn container_labels_and_idle_series_dropped_after_the_ttl() {
        use std::sync::Arc;
        let mut i = info(false);
        (i.cgroup_label, i.series_ttl) = (false, Duration::from_secs(3));
        let mut m = Metrics::new(i);
        let id = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";
        let root = std::path::Path::new("/nonexistent");
        let mut web = flow(1, "nginx", "/x", 5, 6);
        web.who = Some(Arc::new(Identity {
            name: Some("web".into()),
            pod: Some("front".into()),
            namespace: Some("shop".into()),
            ..Identity::of_path(root, &format!("/docker/{id}"))
        }));
        let mut host = flow(2, "curl", "/user.slice/x", 1, 1);
        host.who = Some(Arc::new(Identity::of_path(root, "/")));
        let t0 = Instant::now();
        m.apply_at(&update(vec![web.clone(), host.clone()]), t0);
        let t = m.render(Exposition::Prometheus);
        assert!(
            t.contains(
                "flowtop_rx_bytes_total{comm=\"nginx\",container=\"web\",pod=\"front\",\
                 namespace=\"shop\"} 5\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "flowtop_rx_bytes_total{comm=\"curl\",container=\"\",pod=\"\",namespace=\"\"} 1\n"
            ),
            "{t}"
        );
        assert!(!t.contains("cgroup="), "no cgroup label by default: {t}");
        assert!(t.contains("flowtop_series 2\n"));
        // web keeps moving, curl is idle: after 3 s only web is left.
        web.bytes = Bytes { rx: 1, tx: 0 };
        host.bytes = Bytes::default();
        m.apply_at(
            &update(vec![web.clone(), host.clone()]),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(m.series(), 2);
        m.apply_at(&update(vec![web.clone()]), t0 + Duration::from_secs(3));
        assert_eq!(m.series(), 1);
        let t = m.render(Exposition::Prometheus);
        assert!(
            t.contains("container=\"web\",pod=\"front\",namespace=\"shop\"} 7\n"),
            "{t}"
        );
        assert!(!t.contains("curl"), "{t}");
        assert!(t.contains("flowtop_series 1\n"));
    }
}
