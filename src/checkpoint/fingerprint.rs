//! A run's data, recognised when the run is resumed: a checkpoint keeps a fingerprint of the
//! data it was trained on, and `--resume` with other data (even as many rows) is an error, not
//! a run that silently goes on with another order over other examples.

use crate::error::{Error, Result};

/// A fingerprint of a sequence of byte strings: 64-bit FNV-1a over each part's length (8
/// bytes, little-endian) and then its bytes, so that the parts' boundaries count
/// (`["ab", "c"]` differs from `["a", "bc"]`). As 16 hexadecimal digits.
///
/// Not a cryptographic hash: it tells a user's other file from the one the run started on,
/// not a forgery from the original.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for part in parts {
        eat(&(part.len() as u64).to_le_bytes());
        eat(part);
    }
    format!("{hash:016x}")
}

/// Checks that the data given to a resumed run (its fingerprint `given`) is the data the run
/// started on (`recorded`, from its checkpoint; a checkpoint written before fingerprints has
/// none, and is taken at its word). `what` names the data in the message.
///
/// # Errors
/// [`Error::Config`] when they differ.
pub fn check_same_data(recorded: Option<&str>, given: &str, what: &str) -> Result<()> {
    match recorded {
        Some(recorded) if recorded != given => Err(Error::Config(format!(
            "the {what} is not the one this run started on (its contents differ): resume with \
             the same {what}, or start a new run"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_fnv1a_and_tells_the_parts_apart() {
        // FNV-1a 64 of the empty input is its offset basis
        assert_eq!(fingerprint([]), "cbf29ce484222325");
        let ab_c = fingerprint([&b"ab"[..], b"c"]);
        assert_ne!(ab_c, fingerprint([&b"a"[..], b"bc"]));
        assert_ne!(ab_c, fingerprint([&b"abc"[..]]));
        assert_eq!(
            ab_c,
            fingerprint([&b"ab"[..], b"c"]),
            "the same data, the same print"
        );
    }

    #[test]
    fn other_data_is_refused_and_an_old_checkpoint_taken_at_its_word() {
        check_same_data(Some("00ff"), "00ff", "training data").unwrap();
        check_same_data(None, "00ff", "training data").unwrap();
        assert_eq!(
            check_same_data(Some("00ff"), "0100", "training data")
                .unwrap_err()
                .to_string(),
            "the training data is not the one this run started on (its contents differ): \
             resume with the same training data, or start a new run"
        );
    }
}
