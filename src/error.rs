//! The library's error type: every failure a user can cause, with the path (and, for data, the
//! line) where it happened, so that the command line can print one clear sentence.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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
    #[error("{}{}: {}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default(), printable(message))]
    Data {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A model file is unreadable, foreign, or inconsistent.
    #[error("{}: {}", path.display(), printable(message))]
    Model { path: PathBuf, message: String },
    /// A chart could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// A setting is out of range (hidden size 0, a negative learning rate, ...).
    #[error("{}", printable(.0))]
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
    /// The loss became NaN or infinite in a run that writes its files as it goes
    /// ([`crate::checkpoint::Saver`]): the model file keeps `kept` (in words), and the
    /// checkpoint lets the run go on from there.
    #[error(
        "training diverged in epoch {epoch}: the loss became {loss}. {} keeps {kept}{}. Try a \
         smaller learning rate (it was {lr:?}).",
        model.display(),
        resume_from(checkpoint.as_deref())
    )]
    DivergedSaved {
        epoch: usize,
        loss: f32,
        lr: f32,
        model: PathBuf,
        kept: String,
        /// The checkpoint the run wrote, if it wrote one before it diverged.
        checkpoint: Option<PathBuf>,
    },
}

/// A setting that a message names. The library's messages are read through two front ends
/// that call each setting by another name: the command line by its flag (`--bptt`), the Python
/// package by its argument (`bptt`). A message holds the setting, and it is named as the front
/// end calls it: as an argument, unless [`name_settings_as_flags`] was called (the binary does
/// so before anything else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Batch,
    Bptt,
    Valid,
    Resume,
    Bidirectional,
    TextCol,
    LabelCol,
    Format,
    MaxRowBytes,
    Embed,
    FreezeEmbed,
    Pretrained,
    Tokens,
    Subwords,
}

/// Whether settings are named as the command line's flags.
static AS_FLAGS: AtomicBool = AtomicBool::new(false);

/// From now on, this process's messages name settings as the command line's flags.
pub fn name_settings_as_flags() {
    AS_FLAGS.store(true, Ordering::Relaxed);
}

impl Setting {
    /// The name of the argument (Python's, and the library's own fields').
    pub fn argument(self) -> &'static str {
        match self {
            Setting::Batch => "batch",
            Setting::Bptt => "bptt",
            Setting::Valid => "valid",
            Setting::Resume => "resume",
            Setting::Bidirectional => "bidirectional",
            Setting::TextCol => "text_col",
            Setting::LabelCol => "label_col",
            Setting::Format => "format",
            Setting::MaxRowBytes => "max_row_bytes",
            Setting::Embed => "embed",
            Setting::FreezeEmbed => "freeze_embed",
            Setting::Pretrained => "pretrained",
            Setting::Tokens => "tokens",
            Setting::Subwords => "subwords",
        }
    }

    /// The command line's flag: the argument's name with dashes.
    pub fn flag(self) -> String {
        format!("--{}", self.argument().replace('_', "-"))
    }

    /// The setting given `value`, as this process's messages write it: `--embed 0` on the
    /// command line, `embed=0` elsewhere.
    pub fn given(self, value: &str) -> String {
        if AS_FLAGS.load(Ordering::Relaxed) {
            format!("{} {value}", self.flag())
        } else {
            format!("{}={value}", self.argument())
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if AS_FLAGS.load(Ordering::Relaxed) {
            f.write_str(&self.flag())
        } else {
            f.write_str(self.argument())
        }
    }
}

/// How a diverged run goes on: from `checkpoint`, if one was written.
fn resume_from(checkpoint: Option<&std::path::Path>) -> String {
    match checkpoint {
        Some(path) => format!(
            ", and {} lets {} go on from there",
            path.display(),
            Setting::Resume
        ),
        None => String::new(),
    }
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

    /// An [`Error::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
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

/// `text` with its control characters escaped (`\0`, `\u{1b}`, ...), new lines and tabs
/// excepted: messages quote what files hold, and a file's bytes must not reach a terminal raw
/// (a NUL, or an escape sequence that recolours or rewrites the screen).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(raw) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if raw(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_control_characters_but_keep_lines() {
        let e = Error::Model {
            path: "m.safetensors".into(),
            message: "header \u{0}\u{1b}[2Jx\nnext\tcol".into(),
        };
        assert_eq!(
            e.to_string(),
            "m.safetensors: header \\u{0}\\u{1b}[2Jx\nnext\tcol"
        );
        assert!(matches!(
            printable("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
    }
}
