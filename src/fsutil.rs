//! Writing files so that nothing is lost: every output goes to a temporary file in the same
//! folder and is renamed over the target only once it is complete. A failed or interrupted run
//! leaves the old file (or none) behind, never half of a new one.
//!
//! Temporary files do not outlive their process either: the ones being written are listed, so
//! that the binary's handler for SIGINT, SIGTERM and SIGHUP can remove them
//! ([`remove_temporaries`]) before it exits; and those of a process that died without a chance
//! to clean up (`kill -9`, a power cut) are removed the next time the same file is written.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The temporary name used while `path` is being written: `.tmp-PID-N-NAME` in the same
/// folder, so that the final rename stays on one file system and is atomic, and the extension
/// (which some writers go by) is kept. `N` counts this process's writes, so that two threads
/// writing the same file at once each have a file of their own (the last rename wins, and
/// every version renamed into place is whole).
fn temporary_path(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".tmp-{}-{n}-{name}", std::process::id()))
}

/// The temporary files being written now, by any thread, and the other files that must not
/// outlive the process.
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Lists `path` among the files that [`remove_temporaries`] removes (`listed`), or takes it
/// off the list: a file that must not outlive the process, such as a run's claim on its files.
pub fn remove_on_signal(path: &Path, listed: bool) {
    let mut in_flight = IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if listed {
        in_flight.push(path.to_path_buf());
    } else if let Some(i) = in_flight.iter().position(|p| p == path) {
        in_flight.swap_remove(i);
    }
}

/// Removes the temporary files being written now. For a handler of a terminating signal, which
/// exits afterwards: whatever was being written is abandoned, and its target left as it was.
pub fn remove_temporaries() {
    let in_flight = IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for tmp in in_flight.iter() {
        let _ = fs::remove_file(tmp);
    }
}

/// Removes the temporary files for `path` (`.tmp-PID-N-NAME`, or `.tmp-PID-NAME` from
/// versions before `N`) of processes that no longer run:
/// they were killed while writing it. Another live process's file is left alone. Needs
/// `/proc` to tell; without it nothing is removed.
fn remove_stale_temporaries(path: &Path) {
    let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let suffix = format!("-{}", name.to_string_lossy());
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = file_name
            .strip_prefix(".tmp-")
            .and_then(|rest| rest.strip_suffix(suffix.as_str()))
            .and_then(|middle| middle.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Checks that the folder `path` would be written into exists, so that the error names the
/// folder rather than a temporary file.
pub fn check_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the folder {} does not exist", dir.display()),
            ),
        )),
        _ => Ok(()),
    }
}

/// Creates the folders missing above `path`, as the command line does for the files it writes,
/// and returns the topmost folder it made (`None` when the folder was there). For the
/// library's users (the Python package's `save`), who have no `rnn train` to make them.
///
/// # Errors
/// [`Error::Io`] naming `path` and the folder, when it cannot be made (a file stands in its
/// way, or permission is denied).
pub fn create_parent(path: &Path) -> Result<Option<PathBuf>> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(None);
    };
    if dir.is_dir() {
        return Ok(None);
    }
    let topmost = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .last()
        .map(Path::to_path_buf);
    fs::create_dir_all(dir).map_err(|e| {
        let message = format!("cannot create the folder {}: {e}", dir.display());
        Error::io(path, std::io::Error::new(e.kind(), message))
    })?;
    Ok(topmost)
}

/// Checks, before any work, that a file could be written at `path`: its folder exists, `path`
/// is not itself a folder, and a file can be made in the folder (the temporary file a write
/// would make is made and removed): a folder that is read-only, or not one files can be made
/// in (`/proc`), is told now rather than after the data has been read.
pub fn check_output(path: &Path) -> Result<()> {
    check_parent(path)?;
    if path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "this is a folder, not a file",
            ),
        ));
    }
    let tmp = temporary_path(path);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
    {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(&tmp);
            Ok(())
        }
        // this process's own temporary file: being written, so the folder is writable
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let message = format!("cannot write a file in {}: {e}", dir.display());
            Err(Error::io(path, std::io::Error::new(e.kind(), message)))
        }
    }
}

/// Opens the file of data or texts at `path` (`what` says which, for messages) for reading,
/// after checking that it is a regular file: opening a FIFO would wait for a writer for ever,
/// and a directory or a device holds no data. (Standard input, `-`, is the way to stream.)
///
/// # Errors
/// [`Error::Data`] naming `path` when it is a directory, a FIFO or a device;
/// [`Error::Io`] when it cannot be read.
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::data(path, None, format!("a directory, not {what}")));
    }
    if !meta.is_file() {
        return Err(Error::data(
            path,
            None,
            "not a regular file (a FIFO or a device); give a file, or `-` for standard input",
        ));
    }
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Lets `write` create the file at a temporary path, syncs it to disk, then renames it to
/// `path`. On any error the temporary file is removed and `path` is left untouched.
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_parent(path)?;
    remove_stale_temporaries(path);
    let tmp = temporary_path(path);
    remove_on_signal(&tmp, true);
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|file| file.sync_all())
            .and_then(|()| fs::rename(&tmp, path))
            .map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    remove_on_signal(&tmp, false);
    result
}

/// Writes a file atomically through a buffered writer.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    replace_with(path, |tmp| {
        let file = File::create(tmp).map_err(|e| Error::io(path, e))?;
        let mut out = BufWriter::new(file);
        write(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| Error::io(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("rnn-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, |w| w.write_all(b"first")).unwrap();
        let failed = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary file left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        // a PID that runs no process (PIDs stop below 2^22), and one that does: ours
        let dead = dir.path().join(".tmp-4194305-7-m.safetensors");
        let dead_before_n = dir.path().join(".tmp-4194306-m.safetensors");
        let other = dir.path().join(".tmp-4194305-7-other.safetensors");
        let parent = dir.path().join(format!(
            ".tmp-{}-7-m.safetensors",
            std::os::unix::process::parent_id()
        ));
        for p in [&dead, &dead_before_n, &other, &parent] {
            fs::write(p, "half a model").unwrap();
        }
        write_atomic(&path, |w| w.write_all(b"model")).unwrap();
        assert!(!dead.exists(), "a dead process's temporary file is removed");
        assert!(!dead_before_n.exists());
        assert!(
            other.exists(),
            "another file's temporary is not ours to remove"
        );
        assert!(parent.exists());
        assert_eq!(fs::read_to_string(&path).unwrap(), "model");
    }

    #[test]
    fn threads_writing_one_file_at_once_each_leave_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 200_000]).collect();
        std::thread::scope(|scope| {
            for bytes in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..5 {
                        write_atomic(path, |w| {
                            // in pieces, so that writers overlap
                            for piece in bytes.chunks(1000) {
                                w.write_all(piece)?;
                                w.flush()?;
                            }
                            Ok(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        let written = fs::read(&path).unwrap();
        assert!(contents.contains(&written), "a mix of two writes");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "temporary files left behind");
    }

    #[test]
    fn missing_folders_are_created_and_a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/a/b/m.safetensors");
        let made = create_parent(&path).unwrap();
        assert_eq!(made, Some(dir.path().join("runs")));
        assert!(dir.path().join("runs/a/b").is_dir());
        assert_eq!(create_parent(&path).unwrap(), None, "made already");
        assert_eq!(create_parent(Path::new("m.safetensors")).unwrap(), None);
        fs::write(dir.path().join("file"), "x").unwrap();
        let blocked = dir.path().join("file/m.safetensors");
        let err = create_parent(&blocked).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: cannot create the folder {}: ",
                blocked.display(),
                dir.path().join("file").display()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_missing_folder_is_named_in_the_error() {
        let err = write_atomic(Path::new("/no/such/folder/x.csv"), |_| Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("/no/such/folder does not exist"),
            "{err}"
        );
    }
}
