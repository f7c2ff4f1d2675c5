//! A language model's training text: plain files read whole, and the validation part cut off
//! its end.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The share of a text held out for validation by default: its last 5%, by position.
pub const DEFAULT_VALID_FRACTION: f64 = 0.05;

/// The UTF-8 text of every file of `paths`, one after the other (`-` is standard input).
///
/// # Errors
/// [`Error::Io`] when a file cannot be read; [`Error::Data`] for a directory, or bytes that are
/// not UTF-8 (naming the line and the byte).
pub fn read_texts(paths: &[PathBuf]) -> Result<String> {
    let mut text = String::new();
    for path in paths {
        text.push_str(&read_text(path)?);
    }
    Ok(text)
}

/// The UTF-8 text of one file (see [`read_texts`]).
///
/// # Errors
/// As [`read_texts`].
pub fn read_text(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("stdin", e))?;
    } else {
        let mut file = crate::fsutil::open_regular(path, "a text file")?;
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        Error::data(
            path,
            Some(line),
            format!(
                "byte {at} (0x{:02x}) is not UTF-8: a language model reads UTF-8 text",
                bytes[at]
            ),
        )
    })
}

/// `ids` cut into the training part and the validation part, its last `fraction` (rounded
/// down to whole tokens).
pub fn split_valid(ids: &[u32], fraction: f64) -> (&[u32], &[u32]) {
    let held = (ids.len() as f64 * fraction.clamp(0.0, 1.0)) as usize;
    ids.split_at(ids.len() - held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_part_is_the_end_of_the_text() {
        let ids: Vec<u32> = (0..100).collect();
        let (train, valid) = split_valid(&ids, 0.05);
        assert_eq!((train.len(), valid[0]), (95, 95));
        assert_eq!(split_valid(&ids, 0.0).1.len(), 0);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, b"one\ntwo\nth\xffree").unwrap();
        let e = read_texts(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("0xff"), "{e}");
        let e = read_text(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        std::fs::write(&path, "é\n").unwrap();
        assert_eq!(read_texts(&[path.clone(), path]).unwrap(), "é\né\n");
    }
}
