//! `--serve`: flowtop as a long-lived Prometheus exporter.
//!
//! A minimal HTTP/1.1 responder (one request per connection, then close) for
//! `GET /metrics`. The kernel maps are read on every scrape, so a scrape sees every
//! byte up to that moment, and once a second between scrapes, so exited processes'
//! keys are reclaimed (their bytes stay in the counters) however rarely Prometheus
//! scrapes.
pub mod metrics;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{mpsc, Semaphore},
    time::{interval, timeout, MissedTickBehavior},
};

use self::metrics::{Exposition, Metrics};
use crate::{
    collect::exporter::{ExportReader, Update},
    probe::misses::MissedEvents,
};

/// Reads between scrapes: reclaims exited processes' keys.
pub const UPDATE_PERIOD: Duration = Duration::from_secs(1);
/// How often flowtop checks whether the per-process map needs an early reclaim.
const SWEEP_PERIOD: Duration = Duration::from_millis(50);
/// A client gets this long to send its request and to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests larger than this are refused (a scrape's is a few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;
/// Connections handled at once; more are closed right away.
const MAX_CONNECTIONS: usize = 32;
/// The address when `--serve` names only a port.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `--serve`: `PORT` (on 127.0.0.1), `localhost:PORT`, `IPV4:PORT` or `[IPV6]:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(DEFAULT_HOST, port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port = port
            .parse::<u16>()
            .map_err(|e| format!("bad port {port:?}: {e}"))?;
        return Ok(SocketAddr::new(DEFAULT_HOST, port));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        "expected PORT, IPV4:PORT, [IPV6]:PORT or localhost:PORT (e.g. 9464, \
         127.0.0.1:9464, [::1]:9464)"
            .to_string()
    })
}

/// Binds the listening socket: before capabilities are dropped (a port below 1024
/// needs CAP_NET_BIND_SERVICE) and before the programs are loaded (a port in use
/// fails fast).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("--serve {addr}"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Metrics { head: bool, fmt: Exposition },
    Index { head: bool },
    NotFound,
    MethodNotAllowed,
    Bad,
}

/// Pure: the request line and headers (everything before the blank line).
pub fn parse_request(head: &str) -> Request {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    let is_head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::MethodNotAllowed,
    };
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("accept").then(|| v.trim())
    });
    match target.split('?').next().unwrap_or_default() {
        "/metrics" => Request::Metrics {
            head: is_head,
            fmt: Exposition::negotiate(accept),
        },
        "/" => Request::Index { head: is_head },
        _ => Request::NotFound,
    }
}

/// Pure: the whole response for a request (`metrics` renders the page when needed).
pub fn respond(req: &Request, metrics: impl FnOnce(Exposition) -> String) -> Vec<u8> {
    let (status, ctype, body, head, extra) = match req {
        Request::Metrics { head, fmt } => ("200 OK", fmt.content_type(), metrics(*fmt), *head, ""),
        Request::Index { head } => (
            "200 OK",
            "text/html; charset=utf-8",
            "<html><head><title>flowtop</title></head><body><h1>flowtop</h1>\
             <p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
                .to_string(),
            *head,
            "",
        ),
        Request::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
            false,
            "",
        ),
        Request::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".into(),
            false,
            "Allow: GET, HEAD\r\n",
        ),
        Request::Bad => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".into(),
            false,
            "",
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Reads one request head; None when the client sent nothing usable in time.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(parse_request(&String::from_utf8_lossy(&buf[..end])));
            }
            if buf.len() > MAX_REQUEST {
                return Some(Request::Bad);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    timeout(IO_TIMEOUT, read).await.ok().flatten()
}

/// One read of the maps, with the calls the kernel skipped the programs for.
fn read(reader: &mut ExportReader, misses: &mut MissedEvents<'_>) -> Result<Update> {
    let mut update = reader.read()?;
    update.skipped_calls = misses.since_last();
    Ok(update)
}

/// Serves until SIGINT/SIGTERM.
pub async fn serve_loop(
    listener: std::net::TcpListener,
    mut reader: ExportReader,
    mut misses: MissedEvents<'_>,
    mut metrics: Metrics,
    mut sigint: tokio::signal::unix::Signal,
    mut sigterm: tokio::signal::unix::Signal,
) -> Result<()> {
    let listener = TcpListener::from_std(listener).context("--serve: listening")?;
    let (requests_tx, mut requests) = mpsc::channel::<(TcpStream, Request)>(MAX_CONNECTIONS);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut updates = interval(UPDATE_PERIOD);
    updates.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sweeps = interval(SWEEP_PERIOD);
    sweeps.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sweeps.tick() => reader.sweep()?,
            _ = updates.tick() => metrics.apply(&read(&mut reader, &mut misses)?),
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn!("--serve: accept: {e}");
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    log::warn!("--serve: {MAX_CONNECTIONS} connections open; closing {peer}");
                    continue;
                };
                let tx = requests_tx.clone();
                tokio::spawn(async move {
                    if let Some(req) = read_request(&mut stream).await {
                        let _ = tx.send((stream, req)).await;
                    }
                    drop(permit);
                });
            }
            Some((mut stream, req)) = requests.recv() => {
                if matches!(req, Request::Metrics { .. }) {
                    metrics.apply(&read(&mut reader, &mut misses)?);
                }
                let response = respond(&req, |fmt| metrics.render(fmt));
                log::debug!("--serve: {req:?}: {} bytes", response.len());
                tokio::spawn(async move {
                    let _ = timeout(IO_TIMEOUT, async {
                        stream.write_all(&response).await?;
                        stream.shutdown().await
                    })
                    .await;
                });
            }
            _ = sigint.recv() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(
            parse_addr("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:80").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::1]:9464").unwrap(),
            "[::1]:9464".parse().unwrap()
        );
        assert_eq!(
            parse_addr("0.0.0.0:9464").unwrap(),
            "0.0.0.0:9464".parse().unwrap()
        );
        for bad in ["", "x", "65536", "host:1", "1.2.3.4", "::1:9464"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_scrapes_and_refuses_the_rest() {
        let scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0\r\nUser-Agent: Prometheus/2.42.0";
        assert_eq!(
            parse_request(scrape),
            Request::Metrics {
                head: false,
                fmt: Exposition::OpenMetrics
            }
        );
        assert_eq!(
            parse_request("HEAD /metrics?x=1 HTTP/1.0\r\nhost: x"),
            Request::Metrics {
                head: true,
                fmt: Exposition::Prometheus
            }
        );
        assert_eq!(
            parse_request("GET / HTTP/1.1"),
            Request::Index { head: false }
        );
        assert_eq!(parse_request("GET /x HTTP/1.1"), Request::NotFound);
        assert_eq!(
            parse_request("POST /metrics HTTP/1.1"),
            Request::MethodNotAllowed
        );
        assert_eq!(parse_request("garbage"), Request::Bad);
        assert_eq!(parse_request("GET /metrics SPDY/3"), Request::Bad);
    }

    #[test]
    fn responses_carry_length_type_and_close() {
        let r = respond(
            &Request::Metrics {
                head: false,
                fmt: Exposition::Prometheus,
            },
            |_| "a 1\n".into(),
        );
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(
            r.contains("Content-Length: 4\r\nConnection: close\r\n\r\na 1\n"),
            "{r}"
        );
        let r = respond(
            &Request::Metrics {
                head: true,
                fmt: Exposition::OpenMetrics,
            },
            |_| "a 1\n".into(),
        );
        assert!(String::from_utf8(r)
            .unwrap()
            .ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let r = String::from_utf8(respond(&Request::MethodNotAllowed, |_| unreachable!())).unwrap();
        assert!(r.starts_with("HTTP/1.1 405") && r.contains("Allow: GET, HEAD\r\n"));
    }
}
