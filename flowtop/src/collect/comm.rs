//! [`Comm`]: a process name held inline, so reading 100k keys per interval makes no
//! heap allocation per name.
use std::{borrow::Borrow, cmp::Ordering, fmt, hash, ops::Deref};

/// Bytes held inline: kernel names are at most 16 bytes (15 and a NUL); only names
/// that are not UTF-8 can grow past this once made lossy, and those go to the heap.
const INLINE: usize = 22;

/// A process name as text: reads like a `&str` (`Deref`), compares, orders and
/// hashes as its text does, and is the same size as a `String`.
#[derive(Clone)]
pub struct Comm(Repr);

#[derive(Clone)]
enum Repr {
    /// `len` bytes of UTF-8 at the start of the buffer.
    Inline(u8, [u8; INLINE]),
    Heap(Box<str>),
}

impl Comm {
    /// The NUL-padded kernel name as text (lossy: names are bytes, not UTF-8), without allocating.
    pub fn from_kernel(comm: &[u8]) -> Self {
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        match std::str::from_utf8(&comm[..end]) {
            Ok(s) => Self::from(s),
            Err(_) => Self::from(String::from_utf8_lossy(&comm[..end]).as_ref()),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: only whole `&str`s are copied in (see `From<&str>`).
            Repr::Inline(len, buf) => unsafe {
                std::str::from_utf8_unchecked(&buf[..*len as usize])
            },
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for Comm {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Self(Repr::Inline(s.len() as u8, buf))
        } else {
            Self(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for Comm {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<&Comm> for String {
    fn from(c: &Comm) -> Self {
        c.as_str().to_string()
    }
}

impl Default for Comm {
    fn default() -> Self {
        Self(Repr::Inline(0, [0; INLINE]))
    }
}

impl Deref for Comm {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Comm {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Comm {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Comm {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Comm {}

impl PartialEq<str> for Comm {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Comm {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Comm {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Comm {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl hash::Hash for Comm {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain way: cut at the first NUL, lossy UTF-8, on the heap.
    fn comm_to_string(comm: &[u8]) -> String {
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        String::from_utf8_lossy(&comm[..end]).into_owned()
    }

    #[test]
    fn kernel_names_read_as_comm_to_string_does() {
        for raw in [
            &b"sshd\0\0\0garbage"[..],
            b"0123456789abcdef",
            b"",
            b"\0abc",
            b"bad\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4",
            "名前".as_bytes(),
        ] {
            let c = Comm::from_kernel(raw);
            assert_eq!(c.as_str(), comm_to_string(raw), "{raw:?}");
        }
        // Fifteen invalid bytes: 45 bytes of replacement characters, on the heap.
        assert_eq!(Comm::from_kernel(&[0xff; 15]).chars().count(), 15);
    }

    #[test]
    fn compares_orders_and_hashes_as_its_text() {
        use std::hash::BuildHasher as _;
        let long = "a-very-long-process-name-with, commas";
        let (a, b, l) = (Comm::from("curl"), Comm::from("nginx"), Comm::from(long));
        assert_eq!(&*l, long);
        assert_eq!(a, "curl");
        assert!(a < b);
        assert_eq!(a.cmp(&l), "curl".cmp(long));
        assert_eq!(b.cmp(&l), "nginx".cmp(long));
        assert_eq!(Comm::default(), "");
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one("curl"));
        assert_eq!(format!("{a} {a:?}"), "curl \"curl\"");
    }
}
