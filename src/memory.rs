//! What memory the machine has, so that a size that cannot fit is refused with a sentence
//! before anything is allocated, rather than ending in an allocation failure (an abort) or in
//! the system's out-of-memory killer.

use crate::error::{Error, Result};

/// The memory the system can give without swapping, in bytes: `MemAvailable` of
/// `/proc/meminfo`, or `None` where there is no such file.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses `bytes` (`None`: more than 2^64) for `what` when they exceed the memory available;
/// where that is unknown, only sizes over 2^64 are refused.
///
/// # Errors
/// [`Error::Config`] naming `what`, the bytes needed and the bytes available.
pub fn check(bytes: Option<u64>, what: &str) -> Result<()> {
    let available = available();
    match (bytes, available) {
        (None, _) => Err(Error::Config(format!(
            "{what} needs more than 2^64 bytes of memory"
        ))),
        (Some(b), Some(a)) if b > a => Err(Error::Config(format!(
            "{what} needs {} of memory, and this machine has {} available",
            human(b),
            human(a)
        ))),
        _ => Ok(()),
    }
}

/// Bytes in the unit that reads best (`1.5 GB`).
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_what_the_machine_has_are_refused_by_name() {
        assert!(check(Some(1000), "a small thing").is_ok());
        let err = check(None, "a network").unwrap_err().to_string();
        assert_eq!(err, "a network needs more than 2^64 bytes of memory");
        if let Some(a) = available() {
            let err = check(Some(a + 1), "a network").unwrap_err().to_string();
            assert!(err.starts_with("a network needs "), "{err}");
            assert!(err.contains("available"), "{err}");
        }
        assert_eq!(human(999), "999 bytes");
        assert_eq!(human(1_500_000_000), "1.5 GB");
    }
}
