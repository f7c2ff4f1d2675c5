//! The files a training command writes: their folders made, each checked before any work, and
//! none of them one of the inputs. (The model and the checkpoint are written as the run goes by
//! the library's [`rnn::checkpoint::Saver`].)

use std::path::Path;

use anyhow::{Context, Result, bail};

use rnn::checkpoint::checkpoint_path;
use rnn::fsutil::check_output;

/// Creates the folders of `outputs` (as `rnn demo` does) and fails before any work if one
/// could not be written, or if it is one of `inputs` (which writing it would overwrite).
/// `model` is the output that is the model (named so in the message).
pub fn prepare(outputs: &[&Path], inputs: &[&Path], model: &Path, quiet: bool) -> Result<()> {
    for path in outputs {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create its folder", path.display()))?;
            if !quiet {
                eprintln!("Created the folder {}", dir.display());
            }
        }
        // the checkpoint is only written later, and removed at the end
        if *path != checkpoint_path(model) {
            check_output(path)?;
        }
    }
    for output in outputs {
        for input in inputs {
            if same_file(input, output) {
                bail!(
                    "{}: this is the data being read; writing the {} there would overwrite it",
                    output.display(),
                    if *output == model { "model" } else { "output" }
                );
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` name the same file: the same path, or the same existing file by another
/// path (a link, `./x` and `x`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The last part of a path, for titles.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
