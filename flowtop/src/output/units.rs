//! `--units`: how the table shows an amount of bytes (or bytes per second).
//!
//! Only the table uses units. CSV and JSON always carry exact integer bytes, so the
//! machine formats never lose precision and their keys (`rx_bytes`, ...) always mean
//! what they say.

/// `--units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Units {
    /// KB (1024 bytes) with one decimal: 300 bytes is 0.3
    #[default]
    Kb,
    /// Exact integer bytes
    Bytes,
    /// B, KiB, MiB or GiB, chosen per value (one decimal above B)
    Human,
}

impl Units {
    /// Suffix for column names: `RX_KB`, `RX_BYTES`, `RX` (human values carry their
    /// own unit).
    pub fn header_suffix(self) -> &'static str {
        match self {
            Units::Kb => "_KB",
            Units::Bytes => "_BYTES",
            Units::Human => "",
        }
    }

    /// The unit word for a summary line: `1.5 KB`, `1536 B`, `1.5KiB`.
    fn word(self) -> &'static str {
        match self {
            Units::Kb => " KB",
            Units::Bytes => " B",
            Units::Human => "",
        }
    }

    /// An exact amount of bytes, as a table cell.
    pub fn amount(self, bytes: u64) -> String {
        match self {
            Units::Kb => {
                let mut s = String::new();
                push_kb(&mut s, bytes);
                s
            }
            Units::Bytes => bytes.to_string(),
            Units::Human => human(bytes as f64),
        }
    }

    /// [`amount`](Self::amount) appended to `out` (the table's per-row path).
    pub fn push_amount(self, out: &mut String, bytes: u64) {
        match self {
            Units::Kb => push_kb(out, bytes),
            Units::Bytes => push_u64(out, bytes),
            Units::Human => out.push_str(&human(bytes as f64)),
        }
    }

    /// Bytes per second, as a table cell (`bytes` rounds to a whole byte).
    pub fn rate(self, bytes_per_sec: f64) -> String {
        match self {
            Units::Kb => kb(bytes_per_sec),
            Units::Bytes => format!("{:.0}", bytes_per_sec),
            Units::Human => human(bytes_per_sec),
        }
    }

    /// An amount with its unit, for prose such as the summary line.
    pub fn amount_with_unit(self, bytes: u64) -> String {
        format!("{}{}", self.amount(bytes), self.word())
    }

    /// A rate with its unit, for prose such as the summary line.
    pub fn rate_with_unit(self, bytes_per_sec: f64) -> String {
        format!("{}{}/s", self.rate(bytes_per_sec), self.word())
    }

    /// `RX 1.5 KB, TX 0.3 KB`: received and sent bytes for prose, per second over
    /// `seconds` with `rate` (the table's summary, `-i`'s header).
    pub fn rx_tx(self, bytes: crate::collect::Bytes, rate: bool, seconds: f64) -> String {
        let (rx, tx) = if rate {
            (
                self.rate_with_unit(per_sec(bytes.rx, seconds)),
                self.rate_with_unit(per_sec(bytes.tx, seconds)),
            )
        } else {
            (
                self.amount_with_unit(bytes.rx),
                self.amount_with_unit(bytes.tx),
            )
        };
        format!("RX {rx}, TX {tx}")
    }
}

/// Bytes as KB (1024) with one decimal, rounded to nearest: 300 bytes is "0.3".
pub fn kb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1024.0)
}

/// Exactly `kb(bytes as f64)` (`{:.1}` of `bytes / 1024`), appended to `out` with
/// integers only: 100k rows are 500k amounts per interval, and float formatting was
/// most of the table's cost. `{:.1}` rounds the exact value of the `f64` half to even;
/// that `f64` is `bytes` rounded to 53 bits (an integer, exact in `u128`), and
/// dividing by 1024 is exact, so tenths rounded half to even give the same digits.
pub fn push_kb(out: &mut String, bytes: u64) {
    let mut buf = [0; 24];
    let at = put_kb(&mut buf, 24, bytes);
    push_ascii(out, &buf[at..]);
}

/// [`push_kb`]'s text written into `buf` to end at `end`; returns where it starts.
pub fn put_kb(buf: &mut [u8], end: usize, bytes: u64) -> usize {
    let tenths = kb_tenths(bytes);
    buf[end - 1] = b'0' + (tenths % 10) as u8;
    buf[end - 2] = b'.';
    put_u64(buf, end - 2, tenths / 10)
}

/// Characters [`push_kb`] writes for `bytes`.
pub fn kb_width(bytes: u64) -> usize {
    digits(kb_tenths(bytes) / 10) + 2
}

/// `bytes / 1024` in tenths, rounded as [`push_kb`] explains.
fn kb_tenths(bytes: u64) -> u64 {
    // The f64 `bytes` becomes: the same integer below 2^53.
    let exact = if bytes < 1 << 53 {
        u128::from(bytes)
    } else {
        (bytes as f64) as u128
    };
    let scaled = exact * 10;
    // Below 2^64 * 10 / 1024: a u64, whose digits cost no 128-bit divisions.
    let (tenths, rem) = ((scaled >> 10) as u64, scaled as u64 & 1023);
    if rem > 512 || (rem == 512 && tenths % 2 == 1) {
        tenths + 1
    } else {
        tenths
    }
}

/// `n` in decimal, appended to `out` (what `write!(out, "{n}")` writes, without the
/// formatting machinery: the table writes several per row).
pub fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `n` in decimal (itoa) written into `buf` to end at `end`; returns where it starts.
pub fn put_u64(buf: &mut [u8], end: usize, n: u64) -> usize {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n).as_bytes();
    let at = end - text.len();
    buf[at..end].copy_from_slice(text);
    at
}

/// Appends bytes that the callers here made ASCII (digits, `.`, spaces).
pub fn push_ascii(out: &mut String, ascii: &[u8]) {
    debug_assert!(ascii.is_ascii());
    // SAFETY: ASCII is UTF-8; every caller writes only ASCII bytes.
    out.push_str(unsafe { std::str::from_utf8_unchecked(ascii) });
}

/// Decimal digits of `n` (what [`push_u64`] writes), counted without formatting:
/// the table sizes every column before it writes a cell.
pub fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

const HUMAN_UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];

/// B below 1 KiB (whole bytes), else KiB/MiB/GiB with one decimal. The unit is
/// chosen after rounding, so 1048575 bytes is "1.0MiB", not "1024.0KiB".
pub fn human(bytes: f64) -> String {
    if bytes.round() < 1024.0 {
        return format!("{:.0}B", bytes);
    }
    let mut value = bytes / 1024.0;
    let mut unit = 1;
    while unit + 1 < HUMAN_UNITS.len() && round1(value) >= 1024.0 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{:.1}{}", value, HUMAN_UNITS[unit])
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Bytes per second over `secs`, to a thousandth (0 when no time passed, never NaN
/// or infinite).
pub fn per_sec(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (bytes as f64 / secs * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_kb_matches_float_formatting_including_ties_and_huge_counts() {
        let float = |b: u64| format!("{:.1}", b as f64 / 1024.0);
        let int = |b: u64| {
            let mut s = String::from("x");
            push_kb(&mut s, b);
            s
        };
        let big = [
            1u64 << 40,
            (1 << 40) + 256,
            (1 << 40) + 768,
            (1 << 52) + 512,
            (1 << 53) + 1,
            (1 << 53) + 3,
            u64::MAX,
            u64::MAX - 1024,
            1_000_000_007,
        ];
        let ties = (0..2000u64).map(|k| 256 + 512 * k);
        for b in (0..300_000).chain(big).chain(ties) {
            assert_eq!(int(b), format!("x{}", float(b)), "{b} bytes");
            assert_eq!(kb_width(b), float(b).len(), "{b} bytes");
            assert_eq!(Units::Kb.amount(b), float(b), "{b} bytes");
        }
    }

    use super::*;

    #[test]
    fn push_u64_writes_what_display_writes() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            4_194_304,
            u64::MAX / 10,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut s = String::from("x");
            push_u64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
            assert_eq!(digits(n), s.len() - 1);
        }
    }

    #[test]
    fn kb_keeps_small_counts_visible() {
        assert_eq!(Units::Kb.amount(300), "0.3");
        assert_eq!(Units::Kb.amount(0), "0.0");
        assert_eq!(Units::Kb.amount(1024), "1.0");
        assert_eq!(Units::Kb.amount(1536), "1.5");
        assert_eq!(Units::Kb.amount(3_012_345), "2941.7");
    }

    #[test]
    fn bytes_are_exact_integers_even_beyond_f64_precision() {
        assert_eq!(Units::Bytes.amount(0), "0");
        assert_eq!(Units::Bytes.amount(1), "1");
        assert_eq!(Units::Bytes.amount(u64::MAX), "18446744073709551615");
        assert_eq!(Units::Bytes.rate(1234.4), "1234");
        assert_eq!(Units::Bytes.rate(1234.5), "1234"); // round half to even
        assert_eq!(Units::Bytes.rate(1234.6), "1235");
    }

    #[test]
    fn human_picks_the_unit_per_value() {
        for (bytes, want) in [
            (0, "0B"),
            (1, "1B"),
            (1023, "1023B"),
            (1024, "1.0KiB"),
            (1536, "1.5KiB"),
            (1_048_575, "1.0MiB"), // rounds up into the next unit
            (1_048_576, "1.0MiB"),
            (5 * 1_048_576 + 524_288, "5.5MiB"),
            (1 << 30, "1.0GiB"),
            (3 << 40, "3072.0GiB"), // GiB is the largest unit
        ] {
            assert_eq!(Units::Human.amount(bytes), want, "{bytes}");
        }
        assert_eq!(Units::Human.rate(1023.4), "1023B");
        assert_eq!(Units::Human.rate(1023.6), "1.0KiB");
    }

    #[test]
    fn header_suffix_and_prose_follow_the_unit() {
        assert_eq!(Units::Kb.header_suffix(), "_KB");
        assert_eq!(Units::Bytes.header_suffix(), "_BYTES");
        assert_eq!(Units::Human.header_suffix(), "");
        assert_eq!(Units::Kb.amount_with_unit(2048), "2.0 KB");
        assert_eq!(Units::Bytes.amount_with_unit(2048), "2048 B");
        assert_eq!(Units::Human.amount_with_unit(2048), "2.0KiB");
        assert_eq!(Units::Kb.rate_with_unit(1024.0), "1.0 KB/s");
        assert_eq!(Units::Human.rate_with_unit(10.0), "10B/s");
    }

    #[test]
    fn per_sec_handles_zero_time() {
        assert_eq!(per_sec(1000, 2.0), 500.0);
        assert_eq!(per_sec(1000, 0.0), 0.0);
        assert_eq!(per_sec(1000, 3.0), 333.333);
    }
}
