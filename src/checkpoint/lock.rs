//! One run at a time writes a model's files. Two runs given the same `--model` would otherwise
//! overwrite each other's model and checkpoint, and the first to end would remove the other's
//! checkpoint. A run claims its files with `NAME.lock` beside them, holding its process id,
//! and gives them back when it ends; a claim left by a process that no longer runs (killed,
//! a power cut) is taken over.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::remove_on_signal;

/// The claim of one run on the files named after `name` (the model file, or the checkpoint
/// when there is none): the file `NAME.lock`, removed when the claim is dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// The lock file's path for the files named after `name`: `NAME.lock`, beside them.
pub fn lock_path(name: &Path) -> PathBuf {
    let mut file = name.file_name().unwrap_or_default().to_os_string();
    file.push(".lock");
    name.with_file_name(file)
}

impl RunLock {
    /// Claims the files named after `name` for this run.
    ///
    /// # Errors
    /// [`Error::Io`] naming `name` when another run that still runs holds them (with its
    /// process id), or when the lock file cannot be written.
    pub fn take(name: &Path) -> Result<RunLock> {
        let path = lock_path(name);
        // The claim is made whole or not at all: the process id is written to a file of our
        // own, then linked to the lock's name, which fails if the name exists.
        let mine = path.with_file_name(format!(
            ".tmp-{}-{}",
            std::process::id(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        remove_on_signal(&mine, true);
        let claimed = fs::write(&mine, format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(&path, e))
            .and_then(|()| claim(name, &mine, &path));
        let _ = fs::remove_file(&mine);
        remove_on_signal(&mine, false);
        claimed
    }
}

/// Links `mine` to the lock file `path` of the files named after `name`, taking over a claim
/// whose process has gone.
fn claim(name: &Path, mine: &Path, path: &Path) -> Result<RunLock> {
    for _ in 0..3 {
        match fs::hard_link(mine, path) {
            Ok(()) => {
                // a process stopped by a signal gives its claim back too
                remove_on_signal(path, true);
                return Ok(RunLock {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                check_free(name)?;
                // its holder has gone: take it over
                let _ = fs::remove_file(path);
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Err(Error::io(
        path,
        io::Error::other("other runs keep claiming these files; try again"),
    ))
}

/// Checks, without claiming them, that no run that still runs holds the files named after
/// `name`: for the checks made before any work.
///
/// # Errors
/// [`Error::Io`] naming `name`, the process that holds them, and what to do.
pub fn check_free(name: &Path) -> Result<()> {
    let path = lock_path(name);
    let Ok(held) = fs::read_to_string(&path) else {
        return Ok(());
    };
    match held.trim().parse::<u32>() {
        Ok(pid) if !runs(pid) => Ok(()),
        holder => {
            let who = holder.map_or_else(
                |_| "another run".to_string(),
                |pid| format!("another run (process {pid})"),
            );
            Err(Error::io(
                name,
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "{who} is writing this model; wait for it to end, or choose another \
                         path (if no run is writing it, remove {})",
                        path.display()
                    ),
                ),
            ))
        }
    }
}

/// Whether process `pid` runs. Without `/proc` to tell, it is taken to run, so that a claim is
/// never taken from a live run.
fn runs(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        remove_on_signal(&self.path, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_second_claim_is_refused_while_the_first_is_held_and_granted_after() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        let first = RunLock::take(&model).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("m.safetensors.lock")).unwrap(),
            format!("{}\n", std::process::id())
        );
        let err = RunLock::take(&model).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: another run (process {}) is writing this model; wait for it to end, or \
                 choose another path (if no run is writing it, remove {})",
                model.display(),
                std::process::id(),
                lock_path(&model).display()
            )
        );
        assert!(check_free(&model).is_err());
        drop(first);
        assert!(!lock_path(&model).exists(), "the claim is given back");
        check_free(&model).unwrap();
        let _again = RunLock::take(&model).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "only the lock: no temporary file left");
    }

    #[test]
    fn the_claim_of_a_process_that_has_gone_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        // PIDs stop below 2^22: this one runs no process
        let mut f = fs::File::create(lock_path(&model)).unwrap();
        f.write_all(b"4194305\n").unwrap();
        check_free(&model).unwrap();
        let _lock = RunLock::take(&model).unwrap();
        assert_eq!(
            fs::read_to_string(lock_path(&model)).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}
