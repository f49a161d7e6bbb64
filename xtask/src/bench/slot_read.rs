//! What a poll costs per slot for the direct-mapped designs of `minimal.rs`, so
//! their read can be priced on machines with many more CPUs than this one: the
//! shared array is `mmap`ed and read with plain loads (no syscall, one copy of each
//! slot whatever the number of CPUs), the per-CPU array comes through
//! `BPF_MAP_LOOKUP_BATCH`, which copies every slot once per possible CPU.
//!
//! Every slot is summed as if owned (the worst case: all slots live), and the time is this thread's CPU time, which other load barely changes.
use std::ptr;

use super::*;
use minimal::{create_direct, DIRECT_SLOTS, DIRECT_VALUE_SIZE};
use poll::thread_cpu_ms;

/// One direct-mapped slot as the kernel lays it out (`DIRECT_VALUE_SIZE` bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    tag: u32,
    _pad: u32,
    rx: u64,
    tx: u64,
}

/// Prints the per-slot read costs, medians of `reps` reads.
pub(super) fn report(reps: usize) -> Result<()> {
    assert_eq!(std::mem::size_of::<Slot>(), DIRECT_VALUE_SIZE as usize);
    let cpus = aya::util::nr_cpus()
        .map_err(|(what, e)| anyhow!("{what}: {e}"))?
        .get() as usize;
    let slots = DIRECT_SLOTS as usize;
    let shared = median(&mmap_read_ms(slots, reps)?);
    let per_cpu = median(&batch_read_ms(slots, cpus, reps)?);
    println!(
        "Reading the direct-mapped arrays ({slots} slots, all owned, {cpus} possible \
         CPUs): this thread's CPU ms per full read, median of {reps}, and per slot \
         (per slot and CPU for the per-CPU array, whose read copies every slot once \
         per possible CPU).\n"
    );
    println!("| array | read | CPU ms | ns/slot | ns/slot/CPU |\n|---|---|---|---|---|");
    let ns = |ms: f64, n: usize| ms * 1e6 / n as f64;
    println!(
        "| shared (BPF_F_MMAPABLE) | mmap, plain loads | {shared:.3} | {:.2} | - |",
        ns(shared, slots)
    );
    println!(
        "| per-CPU | BPF_MAP_LOOKUP_BATCH, 4096 per call | {per_cpu:.3} | {:.2} | {:.2} |",
        ns(per_cpu, slots),
        ns(per_cpu, slots * cpus)
    );
    println!();
    Ok(())
}

/// CPU ms of summing every slot of an mmaped shared array, `reps` times.
fn mmap_read_ms(slots: usize, reps: usize) -> Result<Vec<f64>> {
    let map = create_direct(Minimal::DirectShared)?;
    let len = slots * std::mem::size_of::<Slot>();
    // SAFETY: a shared mapping of the array's `len` bytes; the fd stays open while
    // the mapping is used and the mapping is removed before returning.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            map.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        bail!("mmap of the shared direct array: {}", io_error());
    }
    let slot_ptr = base.cast::<Slot>();
    for i in 0..slots {
        // SAFETY: `i` is within the mapping, which is writable.
        unsafe {
            slot_ptr.add(i).write(Slot {
                tag: i as u32 + 1,
                _pad: 0,
                rx: i as u64,
                tx: 2 * i as u64,
            })
        };
    }
    let mut times = Vec::new();
    let mut total = 0u64;
    for _ in 0..reps {
        let c = thread_cpu_ms();
        for i in 0..slots {
            // SAFETY: within the mapping; volatile, as the kernel writes it
            // concurrently (aligned 64-bit loads are single, untorn reads).
            let s = unsafe { ptr::read_volatile(slot_ptr.add(i)) };
            if s.tag != 0 {
                total = total.wrapping_add(s.rx).wrapping_add(s.tx);
            }
        }
        times.push(thread_cpu_ms() - c);
    }
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(base, len) };
    std::hint::black_box(total);
    Ok(times)
}

/// CPU ms of batch-reading and summing every slot of a per-CPU array, `reps` times.
fn batch_read_ms(slots: usize, cpus: usize, reps: usize) -> Result<Vec<f64>> {
    const BATCH: usize = 4096;
    let map = create_direct(Minimal::DirectPerCpu)?;
    let mut keys = vec![0u8; BATCH * 4];
    let mut values = vec![Slot::default(); BATCH * cpus];
    let mut times = Vec::new();
    let mut total = 0u64;
    for _ in 0..reps {
        let c = thread_cpu_ms();
        let (mut cursor, mut read) = (BatchCursor::default(), 0);
        while !cursor.is_done() {
            // SAFETY: plain-old-data slots reinterpreted as bytes, size unchanged.
            let v = unsafe {
                std::slice::from_raw_parts_mut(
                    values.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(values.as_slice()),
                )
            };
            let n = lookup_batch(map.as_raw_fd(), &mut cursor, &mut keys, v, BATCH as u32)
                .context("BPF_MAP_LOOKUP_BATCH of the per-CPU direct array")?
                as usize;
            // The array is empty: every slot summed as if owned (the worst case).
            for s in &values[..n * cpus] {
                total = total
                    .wrapping_add(u64::from(s.tag))
                    .wrapping_add(s.rx)
                    .wrapping_add(s.tx);
            }
            read += n;
        }
        times.push(thread_cpu_ms() - c);
        if read != slots {
            bail!("batch read {read} of {slots} slots");
        }
    }
    std::hint::black_box(total);
    Ok(times)
}

fn io_error() -> std::io::Error {
    std::io::Error::last_os_error()
}
