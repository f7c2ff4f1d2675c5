//! The library's error type: every failure a user can cause, with the path (and, for data, the
//! line) where it happened, so that the command line can print one clear sentence.

use std::path::PathBuf;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or renamed. (The cause is part of the message, not a
    /// separate `source()`, so that printing the error chain does not say it twice.)
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A data file is malformed. `line` is 1-based, when the problem is on one line.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Data {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A model file is unreadable, foreign, or inconsistent.
    #[error("{}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    /// A chart could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// A setting is out of range (hidden size 0, a negative learning rate, ...).
    #[error("{0}")]
    Config(String),
    /// The loss became NaN or infinite; the parameters were restored to the end of `last_good`.
    #[error(
        "training diverged in epoch {epoch}: the loss became {loss}. The model keeps {}. Try a \
         smaller learning rate (it was {lr:?}).",
        if *last_good == 0 { "its initial weights".to_string() } else { format!("its weights after epoch {last_good}") }
    )]
    Diverged {
        epoch: usize,
        loss: f32,
        last_good: usize,
        lr: f32,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Data`] for `path`, at `line` (1-based) when given.
    pub fn data(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}
