//! trafficgen: moves a known number of bytes through real sockets and prints the
//! ground truth, taken from the syscalls' return values, as ONE JSON line on stdout:
//!
//! `{"pid":123,"comm":"trafficgen","rx_bytes":0,"tx_bytes":1048576}`
//!
//! Status lines go to stderr, prefixed `trafficgen: `. Every mode prints
//! `trafficgen: ready pid=P` (sinks: `ready pid=P port=N`) once it is set up, before
//! any payload byte moves. Only std and libc, so that it builds statically for VM
//! guests with a busybox userland.
//!
//! Usage: `trafficgen [OPTIONS] MODE ARGS...` (see `USAGE`).
use std::{
    ffi::CString,
    io::{self, Read as _, Write as _},
    net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

const USAGE: &str = "\
usage: trafficgen [OPTIONS] MODE ARGS...

Modes (ADDR is 127.0.0.1 or ::1; TARGET is HOST:PORT, e.g. 127.0.0.1:4000 or [::1]:4000):
  tcp-sink ADDR             listen on ADDR (any port), accept --conns connections,
                            read each to EOF; ground truth rx
  peek-sink ADDR            like tcp-sink, but every read is preceded by a
                            recv(MSG_PEEK) of the same size; rx counts reads only
  tcp-source TARGET BYTES   connect and send BYTES; ground truth tx
  threads TARGET BYTES N    N threads (named ft-worker-I), each with its own
                            connection, send BYTES in total; tx of the process
  sendfile TARGET BYTES     write BYTES into a memfd/temp file, sendfile() it
  udp-recv ADDR             bind ADDR (any port), count what recv returns until an
                            empty datagram arrives (or --idle-ms without one)
  udp-send TARGET BYTES     send BYTES in datagrams of --dgram bytes, then an
                            empty datagram as end marker (not a byte moved)
  short TARGET BYTES        fork a child that renames itself (--name, default
                            ft-short), sends BYTES and exits; the child prints the
                            ground truth (with parent_pid); the parent waits for it
  steady TARGET SECS        send for SECS seconds (fractions allowed) at --rate
  renamed TARGET BYTES HOW  send half of BYTES on one connection, rename, send the
                            rest on a second: HOW is `prctl:NAME` (PR_SET_NAME) or
                            `exec` (execve of this program, which then sends the
                            rest as `tcp-source --prior-tx HALF`: the name becomes
                            the program's file name); truth: both halves, new name
  conns BYTES               one process, several connections at once: TCP over
                            127.0.0.1 and over ::1 (each client sends about BYTES,
                            its server answers about BYTES/4; both open together,
                            sends interleaved), and UDP over 127.0.0.1 and ::1 (a
                            connected client, an unconnected server that answers
                            with sendto) and from an IPv4 client to a dual-stack
                            server on [::] (that end: IPv4, 0.0.0.0:port). Ready
                            line: `ready pid=P tcp4=N tcp6=N udp4=N udp6=N udp46=N
                            udp4c=N` (the server ports, and the UDP-over-IPv4
                            client's); the ground truth adds
                            `conns`: one object per socket end with proto, laddr,
                            lport, raddr, rport (null: unconnected), rx/tx_bytes
  phases N BYTES PAUSE_MS   one process with both ends of a TCP connection over
                            127.0.0.1 and a UDP pair: N phases, each sends
                            BYTES+7*I over TCP (and reads them), a 2-byte TCP reply,
                            one 1000-byte datagram, then sleeps PAUSE_MS: traffic
                            spread over several intervals, every byte its own
  exchange TARGET UP DOWN   connect, send UP bytes, read exactly DOWN bytes, close
                            (the test process is the peer)

Options:
  --wait-go         after `ready`, block until a line (or EOF) on stdin, or SIGUSR1
  --name NAME       set the process name (prctl PR_SET_NAME) before moving bytes
  --cgroup DIR      first of all, move this process into the cgroup v2 directory
                    DIR (write its PID to DIR/cgroup.procs)
  --conns N         connections a sink accepts (default 1)
  --chunk N         bytes per send/recv call (default 16384)
  --dgram N         UDP payload per datagram (default 1200)
  --rate N          steady: bytes per second (default 1048576)
  --idle-ms N       udp-recv: give up after N ms without a datagram (default 10000)
  --prior-tx N      add N to the ground truth's tx (bytes this PID sent before an exec)
  --hold            after the ground truth, stay alive until EOF on stdin (so that
                    the process still exists while flowtop reports it)
";

static GO: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
struct Opts {
    wait_go: bool,
    hold: bool,
    name: Option<String>,
    cgroup: Option<String>,
    conns: usize,
    chunk: usize,
    dgram: usize,
    rate: u64,
    idle_ms: u64,
    prior_tx: u64,
    mode: String,
    args: Vec<String>,
}

fn parse_args(argv: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        wait_go: false,
        hold: false,
        name: None,
        cgroup: None,
        conns: 1,
        chunk: 16384,
        dgram: 1200,
        rate: 1 << 20,
        idle_ms: 10_000,
        prior_tx: 0,
        mode: String::new(),
        args: Vec::new(),
    };
    let mut it = argv.iter();
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--wait-go" => o.wait_go = true,
            "--hold" => o.hold = true,
            "--name" => o.name = Some(value(a)?),
            "--cgroup" => o.cgroup = Some(value(a)?),
            "--conns" => o.conns = num(&value(a)?, a)?,
            "--chunk" => o.chunk = num(&value(a)?, a)?,
            "--dgram" => o.dgram = num(&value(a)?, a)?,
            "--rate" => o.rate = num(&value(a)?, a)?,
            "--idle-ms" => o.idle_ms = num(&value(a)?, a)?,
            "--prior-tx" => o.prior_tx = num(&value(a)?, a)?,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => positional.push(a.clone()),
        }
    }
    if positional.is_empty() {
        return Err("missing MODE".into());
    }
    o.mode = positional.remove(0);
    o.args = positional;
    if o.chunk == 0 || o.conns == 0 || o.dgram == 0 || o.rate == 0 {
        return Err("--chunk, --conns, --dgram and --rate must be positive".into());
    }
    Ok(o)
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what}: not a number: {s:?}"))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&argv) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("trafficgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts).and_then(|()| hold(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trafficgen: {} failed: {e}", opts.mode);
            ExitCode::from(1)
        }
    }
}

/// Bytes moved by this process, as the syscalls returned them.
#[derive(Default, Clone, Copy)]
struct Moved {
    rx: u64,
    tx: u64,
}

fn run(o: &Opts) -> io::Result<()> {
    if let Some(dir) = &o.cgroup {
        let procs = std::path::Path::new(dir).join("cgroup.procs");
        std::fs::write(&procs, std::process::id().to_string()).map_err(|e| {
            io::Error::new(e.kind(), format!("joining cgroup {}: {e}", procs.display()))
        })?;
    }
    if let Some(name) = &o.name {
        set_process_name(name)?;
    }
    let arg = |i: usize| -> io::Result<&str> {
        o.args
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| invalid(format!("{} needs more arguments", o.mode)))
    };
    let bytes_arg = |i: usize| -> io::Result<u64> {
        arg(i)?
            .parse()
            .map_err(|_| invalid(format!("not a byte count: {:?}", o.args[i])))
    };
    let moved = match o.mode.as_str() {
        "tcp-sink" => tcp_sink(o, arg(0)?, false)?,
        "peek-sink" => tcp_sink(o, arg(0)?, true)?,
        "tcp-source" => tcp_source(o, &target(arg(0)?)?, bytes_arg(1)?)?,
        "threads" => threads(o, &target(arg(0)?)?, bytes_arg(1)?, bytes_arg(2)?)?,
        "sendfile" => sendfile(o, &target(arg(0)?)?, bytes_arg(1)?)?,
        "udp-recv" => udp_recv(o, arg(0)?)?,
        "udp-send" => udp_send(o, &target(arg(0)?)?, bytes_arg(1)?)?,
        "short" => return short(o, &target(arg(0)?)?, bytes_arg(1)?),
        "conns" => {
            let ends = conns(o, bytes_arg(0)?)?;
            let moved = ends.iter().fold(Moved::default(), |m, e| Moved {
                rx: m.rx + e.rx,
                tx: m.tx + e.tx,
            });
            let json: Vec<String> = ends.iter().map(ConnEnd::json).collect();
            return print_truth_with(moved, None, &format!(",\"conns\":[{}]", json.join(",")));
        }
        "steady" => {
            let secs: f64 = arg(1)?
                .parse()
                .map_err(|_| invalid(format!("not seconds: {:?}", o.args[1])))?;
            steady(o, &target(arg(0)?)?, Duration::from_secs_f64(secs))?
        }
        "renamed" => renamed(o, arg(0)?, bytes_arg(1)?, arg(2)?)?,
        "phases" => phases(o, bytes_arg(0)?, bytes_arg(1)?, bytes_arg(2)?)?,
        "exchange" => exchange(o, &target(arg(0)?)?, bytes_arg(1)?, bytes_arg(2)?)?,
        m => return Err(invalid(format!("unknown mode {m:?}"))),
    };
    print_truth(
        Moved {
            tx: moved.tx + o.prior_tx,
            ..moved
        },
        None,
    )
}

/// `--hold`: block until EOF on stdin (the test closes it when it is done).
fn hold(o: &Opts) -> io::Result<()> {
    if o.hold {
        io::stdin().lock().read_to_end(&mut Vec::new())?;
    }
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn target(s: &str) -> io::Result<SocketAddr> {
    s.to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("no address in {s:?}")))
}

/// `ready` on stderr, then (with `--wait-go`) block until the test says go.
fn ready(o: &Opts, port: Option<u16>) -> io::Result<()> {
    ready_with(o, &port.map(|p| format!(" port={p}")).unwrap_or_default())
}

/// `ready pid=P` followed by `extra` (` key=value` pairs).
fn ready_with(o: &Opts, extra: &str) -> io::Result<()> {
    eprintln!("trafficgen: ready pid={}{extra}", std::process::id());
    if o.wait_go {
        wait_for_go()?;
        eprintln!("trafficgen: go");
    }
    Ok(())
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    GO.store(true, Ordering::SeqCst);
}

/// Returns on a line or EOF on stdin, or on SIGUSR1 (installed without SA_RESTART, so
/// it interrupts the blocking read).
fn wait_for_go() -> io::Result<()> {
    // SAFETY: a plain handler that only stores an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let mut byte = [0u8; 1];
    while !GO.load(Ordering::SeqCst) {
        // SAFETY: reading one byte into a valid buffer.
        let n = unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) };
        if n == 0 || (n == 1 && byte[0] == b'\n') {
            break;
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn set_process_name(name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| invalid("NUL in --name".into()))?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 15 bytes).
    if unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process name as the kernel has it for the thread-group leader.
fn process_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn print_truth(m: Moved, parent: Option<u32>) -> io::Result<()> {
    print_truth_with(m, parent, "")
}

/// The ground-truth line; `extra` is spliced in before the closing brace.
fn print_truth_with(m: Moved, parent: Option<u32>, extra: &str) -> io::Result<()> {
    let mut line = format!(
        "{{\"pid\":{},\"comm\":{},\"rx_bytes\":{},\"tx_bytes\":{}",
        std::process::id(),
        json_string(&process_comm()),
        m.rx,
        m.tx
    );
    if let Some(p) = parent {
        line.push_str(&format!(",\"parent_pid\":{p}"));
    }
    line.push_str(extra);
    line.push_str("}\n");
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

fn listen_addr(addr: &str) -> io::Result<SocketAddr> {
    let ip: std::net::IpAddr = addr
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| invalid(format!("not an IP address: {addr:?}")))?;
    Ok(SocketAddr::new(ip, 0))
}

// ---- TCP ----

fn tcp_sink(o: &Opts, addr: &str, peek: bool) -> io::Result<Moved> {
    let listener = TcpListener::bind(listen_addr(addr)?)?;
    ready(o, Some(listener.local_addr()?.port()))?;
    let mut readers = Vec::new();
    for _ in 0..o.conns {
        let (stream, _) = listener.accept()?;
        let chunk = o.chunk;
        readers.push(thread::spawn(move || read_to_eof(stream, chunk, peek)));
    }
    let mut m = Moved::default();
    for r in readers {
        m.rx += r
            .join()
            .map_err(|_| invalid("reader thread panicked".into()))??;
    }
    Ok(m)
}

/// Bytes consumed, i.e. the sum of what the non-peeking reads returned.
fn read_to_eof(mut s: TcpStream, chunk: usize, peek: bool) -> io::Result<u64> {
    let mut buf = vec![0u8; chunk];
    let mut total = 0u64;
    loop {
        if peek {
            // Peek first: these bytes are copied but stay queued, so they must not count.
            let p = retry(|| unsafe {
                libc::recv(
                    s.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    chunk,
                    libc::MSG_PEEK,
                )
            })?;
            if p == 0 {
                return Ok(total);
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = f();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends `bytes` with plain send() calls, counting what each returned.
fn send_all(s: &TcpStream, bytes: u64, chunk: usize) -> io::Result<u64> {
    let buf = pattern(chunk);
    let mut sent = 0u64;
    while sent < bytes {
        let want = (bytes - sent).min(chunk as u64) as usize;
        let n = retry(|| unsafe {
            libc::send(s.as_raw_fd(), buf.as_ptr().cast(), want, libc::MSG_NOSIGNAL)
        })?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "send returned 0"));
        }
        sent += n as u64;
    }
    Ok(sent)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads exactly `bytes`; the peer closing earlier is an error.
fn read_exactly(mut s: &TcpStream, bytes: u64, chunk: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; chunk];
    let mut got = 0u64;
    while got < bytes {
        let want = (bytes - got).min(chunk as u64) as usize;
        match s.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("peer closed after {got} of {bytes} bytes"),
                ))
            }
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Half-close, then wait for the peer to close: the peer has read everything.
fn finish(s: TcpStream) -> io::Result<()> {
    s.shutdown(Shutdown::Write)?;
    let mut s = s;
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => Ok(()),
        Ok(_) => Err(invalid("peer sent data to a source".into())),
        Err(e) => Err(e),
    }
}

fn tcp_source(o: &Opts, to: &SocketAddr, bytes: u64) -> io::Result<Moved> {
    let s = TcpStream::connect(to)?;
    ready(o, None)?;
    let tx = send_all(&s, bytes, o.chunk)?;
    finish(s)?;
    Ok(Moved { rx: 0, tx })
}

/// Sends under one name, renames the process, sends the rest under the new one.
fn renamed(o: &Opts, to_arg: &str, bytes: u64, how: &str) -> io::Result<Moved> {
    let to = target(to_arg)?;
    let half = bytes / 2;
    let s = TcpStream::connect(to)?;
    ready(o, None)?;
    let first = send_all(&s, half, o.chunk)?;
    finish(s)?;
    if how == "exec" {
        let exe = std::env::current_exe()?;
        let argv: Vec<CString> = [
            exe.to_string_lossy().into_owned(),
            "--prior-tx".into(),
            first.to_string(),
            "--chunk".into(),
            o.chunk.to_string(),
            "tcp-source".into(),
            to_arg.into(),
            (bytes - first).to_string(),
        ]
        .into_iter()
        .map(|a| CString::new(a).map_err(|_| invalid("NUL in an argument".into())))
        .collect::<io::Result<_>>()?;
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: NUL-terminated strings and a null-terminated array, alive for the call.
        unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
        return Err(io::Error::last_os_error());
    }
    let name = how
        .strip_prefix("prctl:")
        .ok_or_else(|| invalid(format!("renamed: HOW is prctl:NAME or exec, not {how:?}")))?;
    set_process_name(name)?;
    let s = TcpStream::connect(to)?;
    let rest = send_all(&s, bytes - first, o.chunk)?;
    finish(s)?;
    Ok(Moved {
        rx: 0,
        tx: first + rest,
    })
}

fn threads(o: &Opts, to: &SocketAddr, bytes: u64, n: u64) -> io::Result<Moved> {
    if n == 0 {
        return Err(invalid("need at least one thread".into()));
    }
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(TcpStream::connect(to)?);
    }
    ready(o, None)?;
    let per = bytes / n;
    let mut workers = Vec::new();
    for (i, s) in conns.into_iter().enumerate() {
        let share = if i as u64 == n - 1 {
            bytes - per * (n - 1)
        } else {
            per
        };
        let chunk = o.chunk;
        // std names the OS thread with pthread_setname_np: its comm is "ft-worker-I".
        workers.push(
            thread::Builder::new()
                .name(format!("ft-worker-{i}"))
                .spawn(move || -> io::Result<u64> {
                    let tx = send_all(&s, share, chunk)?;
                    finish(s)?;
                    Ok(tx)
                })?,
        );
    }
    let mut tx = 0;
    for w in workers {
        tx += w.join().map_err(|_| invalid("worker panicked".into()))??;
    }
    Ok(Moved { rx: 0, tx })
}

/// A file descriptor holding `bytes` bytes: a memfd, or an unlinked file in TMPDIR.
fn temp_file(bytes: u64) -> io::Result<std::fs::File> {
    let name = CString::new("trafficgen-sendfile").unwrap();
    // SAFETY: valid NUL-terminated name.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    let mut f = if fd >= 0 {
        // SAFETY: we own the new descriptor.
        std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    } else {
        let path = std::env::temp_dir().join(format!("trafficgen-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        f
    };
    let block = pattern(65536);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    Ok(f)
}

fn sendfile(o: &Opts, to: &SocketAddr, bytes: u64) -> io::Result<Moved> {
    let file = temp_file(bytes)?;
    let s = TcpStream::connect(to)?;
    ready(o, None)?;
    let mut offset: libc::off_t = 0;
    let mut tx = 0u64;
    while tx < bytes {
        let want = (bytes - tx) as usize;
        // SAFETY: valid descriptors and offset pointer.
        let n = retry(|| unsafe {
            libc::sendfile(s.as_raw_fd(), file.as_raw_fd(), &mut offset, want) as isize
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sendfile returned 0",
            ));
        }
        tx += n as u64;
    }
    finish(s)?;
    Ok(Moved { rx: 0, tx })
}

fn steady(o: &Opts, to: &SocketAddr, dur: Duration) -> io::Result<Moved> {
    let s = TcpStream::connect(to)?;
    ready(o, None)?;
    let tick = Duration::from_millis(20);
    let per_tick = (o.rate / 50).max(1);
    let start = Instant::now();
    let mut tx = 0u64;
    let mut next = start;
    while start.elapsed() < dur {
        tx += send_all(&s, per_tick, o.chunk)?;
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    finish(s)?;
    Ok(Moved { rx: 0, tx })
}

// ---- UDP ----

fn udp_recv(o: &Opts, addr: &str) -> io::Result<Moved> {
    let sock = UdpSocket::bind(listen_addr(addr)?)?;
    // A big buffer so that a fast sender does not overflow it (drops would not break
    // the ground truth, but would lose the end marker). FORCE works as root.
    let size: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with a valid int.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    sock.set_read_timeout(Some(Duration::from_millis(o.idle_ms)))?;
    ready(o, Some(sock.local_addr()?.port()))?;
    let mut buf = vec![0u8; 65536];
    let mut rx = 0u64;
    loop {
        match sock.recv(&mut buf) {
            Ok(0) => break,
            Ok(n) => rx += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                eprintln!("trafficgen: no end marker after {} ms idle", o.idle_ms);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Moved { rx, tx: 0 })
}

fn udp_send(o: &Opts, to: &SocketAddr, bytes: u64) -> io::Result<Moved> {
    let bind = match to {
        SocketAddr::V4(_) => "127.0.0.1:0",
        SocketAddr::V6(_) => "[::1]:0",
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(to)?;
    ready(o, None)?;
    let buf = pattern(o.dgram);
    let mut tx = 0u64;
    let mut sent = 0u64;
    let mut datagrams = 0u64;
    while sent < bytes {
        let want = (bytes - sent).min(o.dgram as u64) as usize;
        match sock.send(&buf[..want]) {
            Ok(n) => {
                tx += n as u64;
                sent += want as u64;
            }
            // Loopback can push back with ENOBUFS/EAGAIN under pressure: try again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) => {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        datagrams += 1;
        // Pace a little so the receiver keeps up even on a slow (emulated) machine.
        if datagrams.is_multiple_of(32) {
            thread::sleep(Duration::from_millis(1));
        }
    }
    // End marker: an empty datagram; send() returns 0, so it is no byte moved. Sent a
    // few times in case one is dropped; once the receiver has gone, the ICMP port
    // unreachable of an earlier marker makes a later send fail with ECONNREFUSED.
    for _ in 0..3 {
        match sock.send(&[]) {
            Ok(n) => tx += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Moved { rx: 0, tx })
}

// ---- several connections in one process ----

/// One socket end of `conns` and what its own syscalls returned.
struct ConnEnd {
    proto: &'static str,
    local: SocketAddr,
    /// None: an unconnected socket.
    remote: Option<SocketAddr>,
    rx: u64,
    tx: u64,
}

impl ConnEnd {
    fn json(&self) -> String {
        let (raddr, rport) = match self.remote {
            Some(r) => (json_string(&r.ip().to_string()), r.port().to_string()),
            None => ("null".into(), "null".into()),
        };
        format!(
            "{{\"proto\":\"{}\",\"laddr\":{},\"lport\":{},\"raddr\":{raddr},\"rport\":{rport},\"rx_bytes\":{},\"tx_bytes\":{}}}",
            self.proto,
            json_string(&self.local.ip().to_string()),
            self.local.port(),
            self.rx,
            self.tx
        )
    }
}

/// Reads to EOF, then answers `reply` bytes and closes: a TCP server end.
fn serve(s: TcpStream, reply: u64, chunk: usize) -> io::Result<(u64, u64)> {
    let rx = read_to_eof(s.try_clone()?, chunk, false)?;
    let tx = send_all(&s, reply, chunk)?;
    s.shutdown(Shutdown::Write)?;
    Ok((rx, tx))
}

fn conns(o: &Opts, bytes: u64) -> io::Result<Vec<ConnEnd>> {
    // Everything is set up (connected, accepted) before `ready`: the traffic itself,
    // including every blocking read, starts after flowtop attached.
    let mut tcp = Vec::new();
    for (addr, up) in [
        ("127.0.0.1:0", bytes),
        ("[::1]:0", bytes + bytes / 2 + 1_001),
    ] {
        let l = TcpListener::bind(addr)?;
        let client = TcpStream::connect(l.local_addr()?)?;
        let (server, _) = l.accept()?;
        // Addresses now: once both ends closed, getpeername fails with ENOTCONN.
        let ends = [
            (client.local_addr()?, client.peer_addr()?),
            (server.local_addr()?, server.peer_addr()?),
        ];
        tcp.push((
            l.local_addr()?.port(),
            client,
            server,
            up,
            up / 4 + 333,
            ends,
        ));
    }
    // UDP: an unconnected server and a connected client per family, and a dual-stack
    // IPv6 server (bound to `[::]`) with an IPv4 client: its datagrams go to and come
    // from `::ffff:127.0.0.1`, IPv4 traffic, so flowtop shows that end as IPv4,
    // `0.0.0.0:port` (as `ss` shows a `[::]` socket's IPv4 traffic).
    let mut udp = Vec::new();
    for (server_addr, client_addr, up) in [
        ("127.0.0.1:0", "127.0.0.1:0", bytes / 16 + 111),
        ("[::1]:0", "[::1]:0", bytes / 16 + 222),
        ("[::]:0", "127.0.0.1:0", bytes / 16 + 333),
    ] {
        let server = UdpSocket::bind(server_addr)?;
        let client = UdpSocket::bind(client_addr)?;
        let port = server.local_addr()?.port();
        let (connect_to, server_end): (SocketAddr, SocketAddr) = match server.local_addr()? {
            SocketAddr::V6(a) if a.ip().is_unspecified() => (
                (Ipv4Addr::LOCALHOST, port).into(),
                (Ipv4Addr::UNSPECIFIED, port).into(),
            ),
            a => (a, a),
        };
        client.connect(connect_to)?;
        for s in [&server, &client] {
            s.set_read_timeout(Some(Duration::from_millis(o.idle_ms)))?;
        }
        udp.push((server, client, up, server_end));
    }
    ready_with(
        o,
        &format!(
            " tcp4={} tcp6={} udp4={} udp6={} udp46={} udp4c={}",
            tcp[0].0,
            tcp[1].0,
            udp[0].3.port(),
            udp[1].3.port(),
            udp[2].3.port(),
            udp[0].1.local_addr()?.port()
        ),
    )?;
    let mut ends = Vec::new();
    // TCP: both connections open at once, the clients' sends interleaved chunk by chunk.
    let mut servers = Vec::new();
    for (_, _, server, _, reply, _) in &tcp {
        let (s, reply, chunk) = (server.try_clone()?, *reply, o.chunk);
        servers.push(thread::spawn(move || serve(s, reply, chunk)));
    }
    let mut sent = [0u64; 2];
    while tcp.iter().zip(&sent).any(|(c, s)| *s < c.3) {
        for (c, s) in tcp.iter().zip(sent.iter_mut()) {
            if *s < c.3 {
                *s += send_all(&c.1, (c.3 - *s).min(o.chunk as u64), o.chunk)?;
            }
        }
    }
    for ((_, client, _, _, _, addrs), (handle, tx)) in tcp.iter().zip(servers.into_iter().zip(sent))
    {
        client.shutdown(Shutdown::Write)?;
        let rx = read_to_eof(client.try_clone()?, o.chunk, false)?;
        let (srx, stx) = handle
            .join()
            .map_err(|_| invalid("server thread panicked".into()))??;
        ends.push(ConnEnd {
            proto: "tcp",
            local: addrs[0].0,
            remote: Some(addrs[0].1),
            rx,
            tx,
        });
        ends.push(ConnEnd {
            proto: "tcp",
            local: addrs[1].0,
            remote: Some(addrs[1].1),
            rx: srx,
            tx: stx,
        });
    }
    // UDP in lockstep (datagram, answer of half its size), so none is dropped.
    for (server, client, up, server_end) in &udp {
        let (mut c, mut s) = (Moved::default(), Moved::default());
        let buf = pattern(o.dgram);
        let mut rbuf = vec![0u8; 65536];
        let mut left = *up;
        while left > 0 {
            let want = left.min(o.dgram as u64) as usize;
            c.tx += client.send(&buf[..want])? as u64;
            left -= want as u64;
            let (n, peer) = server.recv_from(&mut rbuf)?;
            s.rx += n as u64;
            s.tx += server.send_to(&buf[..n.div_ceil(2)], peer)? as u64;
            c.rx += client.recv(&mut rbuf)? as u64;
        }
        ends.push(ConnEnd {
            proto: "udp",
            local: client.local_addr()?,
            remote: Some(client.peer_addr()?),
            rx: c.rx,
            tx: c.tx,
        });
        ends.push(ConnEnd {
            proto: "udp",
            local: *server_end,
            remote: None,
            rx: s.rx,
            tx: s.tx,
        });
    }
    Ok(ends)
}

// ---- traffic over several intervals, both ends in one process ----

fn phases(o: &Opts, n: u64, bytes: u64, pause_ms: u64) -> io::Result<Moved> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    let u1 = UdpSocket::bind("127.0.0.1:0")?;
    let u2 = UdpSocket::bind("127.0.0.1:0")?;
    u1.set_read_timeout(Some(Duration::from_millis(o.idle_ms)))?;
    ready(o, None)?;
    let mut m = Moved::default();
    let datagram = pattern(1000);
    let mut rbuf = vec![0u8; 4096];
    for i in 0..n {
        // Chunk by chunk, each read back at once, so loopback buffers never fill.
        let mut left = bytes + 7 * i;
        while left > 0 {
            let sent = send_all(&client, left.min(o.chunk as u64), o.chunk)?;
            m.tx += sent;
            m.rx += read_exactly(&server, sent, o.chunk)?;
            left -= sent;
        }
        m.tx += send_all(&server, 2, o.chunk)?;
        m.rx += read_exactly(&client, 2, o.chunk)?;
        m.tx += u2.send_to(&datagram, u1.local_addr()?)? as u64;
        m.rx += u1.recv_from(&mut rbuf)?.0 as u64;
        thread::sleep(Duration::from_millis(pause_ms));
    }
    Ok(m)
}

/// The client of a request/response with the test process.
fn exchange(o: &Opts, to: &SocketAddr, up: u64, down: u64) -> io::Result<Moved> {
    ready(o, None)?;
    let s = TcpStream::connect(to)?;
    let tx = send_all(&s, up, o.chunk)?;
    let rx = read_exactly(&s, down, o.chunk)?;
    Ok(Moved { rx, tx })
}

// ---- short-lived child ----

fn short(o: &Opts, to: &SocketAddr, bytes: u64) -> io::Result<()> {
    let name = o.name.clone().unwrap_or_else(|| "ft-short".into());
    ready(o, None)?;
    io::stdout().flush()?;
    // SAFETY: single-threaded here, so the child may run arbitrary code after fork.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        let parent = unsafe { libc::getppid() } as u32;
        let code = match (|| -> io::Result<()> {
            set_process_name(&name)?;
            let s = TcpStream::connect(to)?;
            let tx = send_all(&s, bytes, o.chunk)?;
            finish(s)?;
            print_truth(Moved { rx: 0, tx }, Some(parent))
        })() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("trafficgen: short child failed: {e}");
                1
            }
        };
        // SAFETY: leave without running the parent's atexit handlers twice.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    eprintln!("trafficgen: child pid={child} exited");
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(invalid(format!("child failed (wait status {status})")));
    }
    Ok(())
}
