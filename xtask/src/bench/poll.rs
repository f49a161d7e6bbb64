//! `--parts poll`: the CPU one report costs with 1k to 1M live keys, with
//! flowtop's own reading, diffing and printing code on a real per-CPU map.
use super::*;

/// Live keys per row of every polling table. Each map is created for exactly its
/// row's keys (1M keys only here: flowtop's own maps keep `--max-entries`).
const KEYS: [u32; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// Polling cost with N live keys: flowtop's `CounterReader` on a real per-CPU hash of
/// flowtop's layout, then the diff and the table printer, as one interval does.
pub(super) fn poll() -> Result<()> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(p, e)| anyhow!("reading {p}: {e}"))?
        .get() as usize;
    const REPS: usize = 5;
    println!(
        "## Polling\n\nOne interval (read map + diff + format the table to a sink) with N \
         live keys in a per-CPU hash ({cpus} possible CPUs), every key with new bytes \
         (N rows), median of {REPS}. CPU ms is this thread's user+system time (robust \
         against other load); wall ms includes waiting for a CPU. \"steady\" is a \
         running flowtop's interval: the same reader and differ as the interval before, \
         every key's counters raised between the two (untimed). \"first\" is the first \
         interval, with an empty differ (its tables grow). Both read with \
         BPF_MAP_LOOKUP_BATCH, flowtop's path; \"key by key\" is the get_next_key + \
         lookup fallback (first interval). Liveness: \"/proc stat per key\" is the cost \
         of the former `/proc/<pid>` check per key; flowtop now lists /proc once per \
         interval (cost independent of N, measured below on this machine).\n"
    );
    if cfg!(debug_assertions) {
        // `cargo xtask` builds in release (.cargo/config.toml); a dev build of xtask
        // (`cargo run -p xtask`) measures unoptimized code, several times slower.
        println!(
            "Built without optimizations (a dev build of xtask, not `cargo xtask`): \
             flowtop's code runs unoptimized here, several times slower than in the \
             release binary. `cargo xtask bench --parts poll` measures it optimized, \
             as shipped.\n"
        );
    }
    println!(
        "| live keys | steady: CPU ms | wall ms | CPU ns/key | first: CPU ms | wall ms | key by key: CPU ms | /proc stat per key: CPU ms |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for n in KEYS {
        let steady = interval_times(n, cpus, REPS, Interval::Steady)?;
        let first = interval_times(n, cpus, REPS, Interval::First)?;
        let by_key = interval_times(n, cpus, REPS.min(3), Interval::FirstKeyByKey)?;
        let c = thread_cpu_ms();
        let alive = (1..=n)
            .filter(|p| Path::new("/proc").join(p.to_string()).exists())
            .count();
        let stat_ms = thread_cpu_ms() - c;
        std::hint::black_box(alive);
        let cpu = |v: &[Sample]| median(&v.iter().map(|s| s.cpu_ms).collect::<Vec<_>>());
        let wall = |v: &[Sample]| median(&v.iter().map(|s| s.wall_ms).collect::<Vec<_>>());
        println!(
            "| {n} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            cpu(&steady),
            wall(&steady),
            cpu(&steady) * 1e6 / n as f64,
            cpu(&first),
            wall(&first),
            cpu(&by_key),
            stat_ms
        );
    }
    let mut scans = Vec::new();
    let mut procs = 0;
    for _ in 0..REPS {
        let t = Instant::now();
        procs = LivePids::scan()?.len();
        scans.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "\nOne listing of /proc ({procs} processes here): {:.2} ms (median of {REPS}).\n",
        median(&scans)
    );
    read_by_design(cpus, REPS)
}

/// The kernel's share of a poll, by map design: `BPF_MAP_LOOKUP_BATCH` over every
/// key of a per-CPU hash (flowtop's design: one value per possible CPU per key) and
/// of one shared hash (one value per key, as a design with atomic adds would keep),
/// both `u32 -> ProcCounters` with N keys, 4096 keys per call; and the same N
/// counters in a `BPF_F_MMAPABLE` array read through a mapping, with no syscall: the
/// read a direct-mapped array (slot = PID modulo size, tagged with its PID) leaves.
pub(super) fn read_by_design(cpus: usize, reps: usize) -> Result<()> {
    println!(
        "Map read alone (`BPF_MAP_LOOKUP_BATCH` of every key, 4096 per call), by map \
         design, `u32 -> ProcCounters` ({} B): CPU ms of this thread (almost all of it \
         system time), median of {reps}. \"mmapped array\": the same N counters as \
         {} B slots {{tag (PID) u32, rx u64, tx u64}} of one `BPF_MAP_TYPE_ARRAY` with \
         `BPF_F_MMAPABLE`, read through a shared mapping (no syscall): every tagged \
         slot copied out, as a direct-mapped array design would read.\n\n\
         | live keys | per-CPU hash ({cpus} CPUs) | shared hash | shared / per-CPU | mmapped array | mmapped / per-CPU |\n\
         |---|---|---|---|---|---|",
        std::mem::size_of::<ProcCounters>(),
        std::mem::size_of::<ArraySlot>(),
    );
    for n in KEYS {
        let mut per_cpu = PerCpuHashMap::<MapData, u32, ProcCounters>::create(n, 0)
            .context("creating a per-CPU hash")?;
        let mut shared =
            HashMap::<MapData, u32, ProcCounters>::create(n, 0).context("creating a hash")?;
        for (pid, values) in bench_counters(n, cpus, 0) {
            shared.insert(&pid, &values[0], 0)?;
            per_cpu.insert(&pid, PerCpuValues::try_from(values)?, 0)?;
        }
        let per_cpu_ms = batch_read_ms(per_cpu.map().fd().as_fd().as_raw_fd(), cpus, n, reps)?;
        let shared_ms = batch_read_ms(shared.map().fd().as_fd().as_raw_fd(), 1, n, reps)?;
        drop((per_cpu, shared));
        let mmap_ms = mmap_read_ms(n, reps)?;
        println!(
            "| {n} | {per_cpu_ms:.2} | {shared_ms:.2} | {:.2} | {mmap_ms:.3} | {:.3} |",
            shared_ms / per_cpu_ms,
            mmap_ms / per_cpu_ms
        );
    }
    println!();
    Ok(())
}

/// One slot of a direct-mapped counter array: the PID that owns it (0: free) and
/// its bytes, as the programs would add them atomically.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct ArraySlot {
    tag: u32,
    _pad: u32,
    rx: u64,
    tx: u64,
}

// SAFETY: `repr(C)`, integers only, explicit padding: any bit pattern is valid.
unsafe impl aya::Pod for ArraySlot {}

/// Median CPU ms of reading `n` tagged slots of a `BPF_F_MMAPABLE` array through a
/// shared read-only mapping (created and filled untimed, through `bpf(2)` updates).
fn mmap_read_ms(n: u32, reps: usize) -> Result<f64> {
    const BPF_F_MMAPABLE: u32 = 1 << 10;
    let mut array = Array::<MapData, ArraySlot>::create(n, BPF_F_MMAPABLE)
        .context("creating an mmapable array")?;
    for i in 0..n {
        let slot = ArraySlot {
            tag: i + 1,
            rx: u64::from(i) * 1000,
            tx: u64::from(i) * 10,
            ..Default::default()
        };
        array.set(i, &slot, 0)?;
    }
    let len = n as usize * std::mem::size_of::<ArraySlot>();
    // SAFETY: maps the array's values (page-aligned, `len` bytes and more) read-only;
    // unmapped below, and nothing else holds the pointer.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            array.map().fd().as_fd().as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        bail!("mmap of the array: {}", std::io::Error::last_os_error());
    }
    let slots = ptr.cast::<ArraySlot>().cast_const();
    let mut out: Vec<(u32, u64, u64)> = Vec::with_capacity(n as usize);
    let mut times = Vec::new();
    for _ in 0..reps {
        out.clear();
        let c = thread_cpu_ms();
        for i in 0..n as usize {
            // SAFETY: `i < n` slots lie in the mapping; volatile, as the programs
            // would write them concurrently (and so the copy is not elided).
            let s = unsafe { std::ptr::read_volatile(slots.add(i)) };
            if s.tag != 0 {
                out.push((s.tag, s.rx, s.tx));
            }
        }
        times.push(thread_cpu_ms() - c);
        std::hint::black_box(&out);
    }
    // SAFETY: the mapping made above, of `len` bytes.
    unsafe { libc::munmap(ptr, len) };
    if out.len() != n as usize {
        bail!("mmapped read found {} of {n} slots", out.len());
    }
    Ok(median(&times))
}

/// Median CPU ms of reading all `n` keys of the hash at `fd` in batches, `slots`
/// values per key (possible CPUs for a per-CPU map, else 1).
pub(super) fn batch_read_ms(fd: RawFd, slots: usize, n: u32, reps: usize) -> Result<f64> {
    let batch: usize = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let mut keys = vec![0u32; batch];
    let mut values = vec![ProcCounters::default(); batch * slots];
    let mut times = Vec::new();
    for _ in 0..reps {
        let c = thread_cpu_ms();
        let mut cursor = BatchCursor::default();
        let mut read = 0;
        while !cursor.is_done() {
            // SAFETY: plain-old-data buffers reinterpreted as bytes, sizes unchanged.
            let (k, v) = unsafe {
                (
                    std::slice::from_raw_parts_mut(keys.as_mut_ptr().cast::<u8>(), batch * 4),
                    std::slice::from_raw_parts_mut(
                        values.as_mut_ptr().cast::<u8>(),
                        std::mem::size_of_val(values.as_slice()),
                    ),
                )
            };
            read += lookup_batch(fd, &mut cursor, k, v, batch as u32)
                .context("BPF_MAP_LOOKUP_BATCH")?;
        }
        times.push(thread_cpu_ms() - c);
        if read != n {
            bail!("batch read {read} of {n} keys");
        }
    }
    Ok(median(&times))
}

/// CPU time (user + system) this thread has used: unlike wall time, other processes
/// competing for the CPUs barely change it.
pub(super) fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// User and system CPU ms this thread has used (`getrusage`): splits a read into
/// the kernel's share and flowtop's. Without `CONFIG_VIRT_CPU_ACCOUNTING_GEN` the
/// kernel splits the exact total by which side each timer tick landed on (4 ms at
/// HZ=250), so a 50 ms read's split is good to a tick or two.
fn thread_user_sys_ms() -> (f64, f64) {
    // SAFETY: zeroed `rusage` is valid; RUSAGE_THREAD exists since Linux 2.6.26.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `rusage` to fill.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    (ms(ru.ru_utime), ms(ru.ru_stime))
}

pub(super) struct Sample {
    cpu_ms: f64,
    wall_ms: f64,
}

/// Which interval [`interval_times`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interval {
    /// A running flowtop's: reader and differ kept from the interval before.
    Steady,
    /// The first: a fresh differ, whose tables start empty.
    First,
    /// The first, reading key by key as on kernels without batch operations.
    FirstKeyByKey,
}

/// `n` keys' counters for round `round`: every round raises every key's bytes.
pub(super) fn bench_counters(
    n: u32,
    cpus: usize,
    round: u64,
) -> impl Iterator<Item = (u32, Vec<ProcCounters>)> {
    let mut comm = [0u8; COMM_LEN];
    comm[..5].copy_from_slice(b"bench");
    (1..=n).map(move |pid| {
        let per_cpu = (0..cpus as u64)
            .map(|c| ProcCounters {
                rx_bytes: (round + 1) * (pid as u64 * 1000 + c),
                tx_bytes: (round + 1) * (pid as u64 * 10 + c),
                comm_ns: c,
                born_ns: u64::from(c == 0),
                comm,
            })
            .collect();
        (pid, per_cpu)
    })
}

/// Time per interval, `reps` times, with `n` keys.
pub(super) fn interval_times(
    n: u32,
    cpus: usize,
    reps: usize,
    which: Interval,
) -> Result<Vec<Sample>> {
    let procs = PerCpuHashMap::<MapData, u32, ProcCounters>::create(n, 0)
        .context("creating a per-CPU hash")?;
    // A second handle on the same map, to raise the counters between intervals while
    // the reader owns the first, as the programs do.
    let mut writer = PerCpuHashMap::<MapData, u32, ProcCounters>::try_from(Map::PerCpuHashMap(
        MapData::from_fd(procs.map().fd().as_fd().try_clone_to_owned()?)?,
    ))?;
    let mut raise = |round: u64| -> Result<()> {
        for (pid, per_cpu) in bench_counters(n, cpus, round) {
            writer.insert(&pid, PerCpuValues::try_from(per_cpu)?, 0)?;
        }
        Ok(())
    };
    raise(0)?;
    let unrecorded = PerCpuArray::<MapData, Unrecorded>::create(1, 0)?;
    let mut maps = KernelMaps::from_maps(procs, unrecorded)?;
    let reader = &mut maps.procs;
    if which == Interval::FirstKeyByKey {
        reader.force_key_by_key();
    }
    let live: LivePids = (1..=n).collect();
    let mut sink = Vec::with_capacity(100 * n as usize);
    let mut differ = ProcDiffer::new();
    if which == Interval::Steady {
        // The interval before: fills the differ's tables and the reader's buffers.
        let report = differ.next(&reader.read_with(|| Ok(live.clone()))?, Default::default());
        std::hint::black_box(report);
    }
    let mut times = Vec::new();
    for rep in 0..reps {
        sink.clear();
        if which == Interval::Steady {
            raise(rep as u64 + 1)?;
        } else {
            // Every key has moved bytes since the start, so every key makes a row.
            differ = ProcDiffer::new();
        }
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let (u0, s0) = thread_user_sys_ms();
        let snap = reader.read_with(|| Ok(live.clone()))?;
        let (t_read, c_read) = (t.elapsed(), thread_cpu_ms());
        let (u1, s1) = thread_user_sys_ms();
        let report = differ.next(&snap, Default::default());
        let c_diff = thread_cpu_ms();
        let stamp = flowtop::dev::Stamp {
            at: SystemTime::now(),
            elapsed: std::time::Duration::from_secs(1),
            skipped: 0,
        };
        flowtop::dev::printer(Format::Table, &mut sink).interval(&report, &stamp)?;
        let c_end = thread_cpu_ms();
        times.push(Sample {
            cpu_ms: c_end - c,
            wall_ms: t.elapsed().as_secs_f64() * 1e3,
        });
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!(
                "n={n} {which:?} cpu ms: read {:.2} (system {:.1}, user {:.1}) diff {:.2} print {:.2}; wall read {t_read:?}",
                c_read - c,
                s1 - s0,
                u1 - u0,
                c_diff - c_read,
                c_end - c_diff
            );
        }
        if report.rows.len() != n as usize {
            bail!("read {} rows from {n} keys", report.rows.len());
        }
    }
    if which != Interval::FirstKeyByKey && reader.batched() != Some(true) {
        bail!("batched reads were not used");
    }
    Ok(times)
}
