//! Reading labelled text files: TSV and CSV with a header row, and fastText's format.
//!
//! - **TSV** (`.tsv`): a header row, then one example per line, fields separated by tabs. There
//!   is no quoting: a `"` is an ordinary character (reviews are full of them), so a field can
//!   hold neither a tab nor a newline.
//! - **CSV** (`.csv`): a header row, fields separated by commas, with RFC 4180 quoting: a field
//!   in double quotes can hold commas, newlines and doubled quotes (`"he said ""hi"""`).
//! - **fastText** (any other extension): one example per line, `__label__NAME the text`.
//!
//! In TSV and CSV the header names the columns; the text and label columns are picked by name
//! ([`Columns`], `--text-col` and `--label-col` on the command line), in any order, and the other
//! columns are ignored. Windows line endings and a UTF-8 byte order mark are accepted everywhere.
//!
//! [`Texts`] reads the same files without labels, one text at a time, for predicting: a TSV or
//! CSV file's text column (a label column may be there or not), or one text a line.
//!
//! **Errors.** Every malformed row is an error naming the file and the line (a wrong number of
//! fields, invalid UTF-8, an empty label, a missing or repeated fastText label): nothing is
//! skipped silently except blank lines. A row with a label and an empty text is an example (of
//! a text with no tokens, which a model can still be asked about). A file without a single
//! example is an error too.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Chain, Cursor, ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::data::records::{self, Line, RecordError, Records, read_line};
use crate::error::{Error, Result};

/// Which columns of a TSV/CSV file hold the text and the label (by default `text` and `label`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    /// The name of the text column in the header.
    pub text: String,
    /// The name of the label column in the header.
    pub label: String,
}

impl Default for Columns {
    /// The columns `text` and `label`.
    fn default() -> Self {
        Columns {
            text: "text".to_string(),
            label: "label".to_string(),
        }
    }
}

/// How to read a TSV/CSV/fastText file: which columns, and how long a row may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// The text and label columns (TSV and CSV).
    pub columns: Columns,
    /// The most bytes a row (a line, or a CSV record over several lines) may hold; a longer
    /// one is an error naming its line (see [`records::DEFAULT_MAX_BYTES`]).
    pub max_row_bytes: usize,
    /// The format, whatever the file's extension says (`None`: by the extension).
    pub format: Option<Format>,
    /// Keep only this shard of the rows (every row is still read and checked).
    pub shard: Option<Shard>,
}

/// Every `count`-th row, from row `index` (0-based, blank lines not counted): the rows one of
/// `count` processes trains on, the others never held in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the `n`-th row (0-based) is in the shard.
    pub fn holds(self, n: usize) -> bool {
        n % self.count == self.index
    }
}

impl Default for ReadOptions {
    /// The columns `text` and `label`, rows of at most [`records::DEFAULT_MAX_BYTES`].
    fn default() -> Self {
        ReadOptions {
            columns: Columns::default(),
            max_row_bytes: records::DEFAULT_MAX_BYTES,
            format: None,
            shard: None,
        }
    }
}

/// One labelled row of a data file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The 1-based line where the row starts (a quoted CSV field can span several lines).
    pub line: usize,
    /// The text, as it is in the file (tokenisation happens later); it may be empty.
    pub text: String,
    /// The label, without surrounding white space; never empty.
    pub label: String,
}

/// The file formats, chosen by extension: `.tsv` is [`Format::Tsv`], `.csv` is [`Format::Csv`],
/// anything else (`.txt`, `.train`, no extension) is [`Format::FastText`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated, a header row, no quoting.
    Tsv,
    /// Comma-separated, a header row, RFC 4180 quoting.
    Csv,
    /// One `__label__NAME text` per line.
    FastText,
}

impl Format {
    /// The format of `path`, by its extension (compared case-insensitively).
    pub fn of(path: &Path) -> Format {
        let ext = path.extension().and_then(OsStr::to_str).unwrap_or("");
        if ext.eq_ignore_ascii_case("tsv") {
            Format::Tsv
        } else if ext.eq_ignore_ascii_case("csv") {
            Format::Csv
        } else {
            Format::FastText
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// `tsv`, `csv` or `fasttext`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tsv" => Ok(Format::Tsv),
            "csv" => Ok(Format::Csv),
            "fasttext" => Ok(Format::FastText),
            _ => Err(format!(
                "unknown format {s:?} (expected tsv, csv or fasttext)"
            )),
        }
    }
}

/// Reads every labelled row of `path`, in `options.format` or else the format its extension
/// names ([`Format::of`]). The path `-` is standard input (fastText's format unless
/// `options.format` says otherwise), named `stdin` in messages.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read; [`Error::Data`] for the first
/// malformed row (with its line), a header without the wanted columns, or a file without
/// examples.
pub fn read_rows(path: &Path, options: &ReadOptions) -> Result<Vec<Row>> {
    let stdin = path == Path::new("-");
    let (format, chosen) = match options.format {
        Some(format) => (format, Chosen::Given),
        None if stdin => (Format::FastText, Chosen::Stdin),
        None => (Format::of(path), Chosen::Extension),
    };
    if stdin {
        let stdin = std::io::stdin().lock();
        return parse(stdin, format, chosen, Path::new("stdin"), options);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::data(path, None, "a directory, not a data file"));
    }
    parse(file, format, chosen, path, options)
}

/// What chose the format a file is read in: messages about a file that does not look like
/// that format say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chosen {
    /// The file's extension ([`Format::of`]).
    Extension,
    /// Standard input, read in fastText's format unless told otherwise.
    Stdin,
    /// The caller (`--format` on the command line).
    Given,
}

/// Reads every labelled row from `reader` (a file, standard input, bytes in a test), in
/// `format`; `path` only names the source in error messages. The columns are ignored for
/// fastText.
///
/// # Errors
/// As [`read_rows`].
pub fn parse_rows(
    reader: impl Read,
    format: Format,
    path: &Path,
    options: &ReadOptions,
) -> Result<Vec<Row>> {
    parse(reader, format, Chosen::Given, path, options)
}

/// [`parse_rows`], knowing what chose the format.
fn parse(
    reader: impl Read,
    format: Format,
    chosen: Chosen,
    path: &Path,
    options: &ReadOptions,
) -> Result<Vec<Row>> {
    let (reader, empty) = skip_bom(reader).map_err(|e| Error::io(path, e))?;
    if empty {
        return Err(Error::data(path, None, "no examples (the file is empty)"));
    }
    let (columns, max) = (&options.columns, options.max_row_bytes);
    let reader = BufReader::with_capacity(1 << 16, reader);
    match format {
        Format::Tsv => parse_delimited(
            Records::tsv(reader, max),
            format,
            path,
            columns,
            options.shard,
        ),
        Format::Csv => parse_delimited(
            Records::csv(reader, max),
            format,
            path,
            columns,
            options.shard,
        ),
        Format::FastText => parse_fasttext(reader, chosen, path, max, options.shard),
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const ONLY_BLANK: &str = "no examples (the file has only blank lines)";
const INVALID_UTF8: &str = "invalid UTF-8";

/// A reader after [`skip_bom`]: the bytes it looked at, then the rest.
type Unmarked<R> = Chain<Cursor<Vec<u8>>, R>;

/// `reader` without a leading UTF-8 byte order mark, and whether it is empty (but for the mark).
fn skip_bom<R: Read>(mut reader: R) -> std::io::Result<(Unmarked<R>, bool)> {
    let mut start = Vec::with_capacity(BOM.len());
    fill(&mut reader, &mut start, BOM.len())?;
    if start == BOM {
        start.clear();
        fill(&mut reader, &mut start, 1)?;
    }
    let empty = start.is_empty();
    Ok((Cursor::new(start).chain(reader), empty))
}

/// Reads from `reader` until `buf` holds `n` bytes or the reader ends.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    let mut byte = [0];
    while buf.len() < n {
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// TSV or CSV: the header, then every row.
fn parse_delimited(
    mut records: Records<impl BufRead>,
    format: Format,
    path: &Path,
    columns: &Columns,
    shard: Option<Shard>,
) -> Result<Vec<Row>> {
    if columns.text == columns.label {
        return Err(Error::Config(format!(
            "--text-col and --label-col both name the column {:?}",
            columns.text
        )));
    }
    let mut record = Vec::new();
    let Some((header_line, names)) = read_header(&mut records, &mut record, path)? else {
        return Err(Error::data(path, None, ONLY_BLANK));
    };
    let header = Header {
        line: header_line,
        names,
        format,
        wanted: columns.clone(),
        flags: "--text-col and --label-col",
    };
    let text_col = header.column(&columns.text, "--text-col", path)?;
    let label_col = header.column(&columns.label, "--label-col", path)?;
    let names = header.names;

    let width = names.len();
    let mut rows = Vec::new();
    let mut seen = 0;
    while let Some(line) = next_record(&mut records, &mut record, path)? {
        if record.len() != width {
            let message = wrong_width(format, width, record.len());
            return Err(Error::data(path, Some(line), message));
        }
        let text = field(&record, text_col, path, line)?;
        let label = field(&record, label_col, path, line)?.trim();
        let row = row(line, text, label).map_err(|m| Error::data(path, Some(line), m))?;
        if shard.is_none_or(|s| s.holds(seen)) {
            rows.push(row);
        }
        seen += 1;
    }
    if seen == 0 {
        return Err(Error::data(path, None, "no examples after the header"));
    }
    Ok(rows)
}

/// Reads the header row: the line it is on and its names (trimmed, without a byte order mark);
/// `None` when the input has only blank lines.
fn read_header(
    records: &mut Records<impl BufRead>,
    record: &mut Vec<Vec<u8>>,
    path: &Path,
) -> Result<Option<(usize, Vec<String>)>> {
    let Some(line) = next_record(records, record, path)? else {
        return Ok(None);
    };
    let mut names = Vec::with_capacity(record.len());
    for i in 0..record.len() {
        let name = field(record, i, path, line)?;
        let name = if i == 0 {
            name.strip_prefix('\u{feff}').unwrap_or(name)
        } else {
            name
        };
        names.push(name.trim().to_string());
    }
    Ok(Some((line, names)))
}

/// A TSV or CSV file's header row, and what is looked for in it.
struct Header {
    /// The line it is on.
    line: usize,
    /// The column names.
    names: Vec<String>,
    format: Format,
    /// The columns the reader wants (for predicting, the label's is only for messages).
    wanted: Columns,
    /// The flags that name other columns.
    flags: &'static str,
}

/// The most characters of a row (or a list of names) that a message quotes.
const ECHO: usize = 80;

impl Header {
    /// The index of the column `name`; an error naming `flag`, which picks another column,
    /// when there is none (saying so when the row looks like data rather than a header), or
    /// when there are several.
    fn column(&self, name: &str, flag: &str, path: &Path) -> Result<usize> {
        let mut found = self.names.iter().enumerate().filter(|(_, n)| *n == name);
        let message = match (found.next(), found.next()) {
            (Some((i, _)), None) => return Ok(i),
            (None, _) if self.looks_like_data() => self.not_a_header(),
            (None, _) => format!(
                "the header has no {name:?} column (it has: {}); pick one with {flag}",
                cut(&self.names.join(", "), ECHO)
            ),
            (Some(_), Some(_)) => format!("the header has several {name:?} columns"),
        };
        Err(Error::data(path, Some(self.line), message))
    }

    /// Whether the first row is more likely an example than a header: it names none of the
    /// wanted columns, and it holds a number, a field of three words or more, or a field of
    /// several words beside one of a single word (a text and its label). Column names are
    /// rarely any of these.
    fn looks_like_data(&self) -> bool {
        let wanted = [&self.wanted.text, &self.wanted.label];
        if self.names.iter().any(|n| wanted.contains(&n)) {
            return false;
        }
        let words = |n: &String| n.split_whitespace().count();
        let number =
            |n: &String| n.parse::<f64>().is_ok() && n.contains(|c: char| c.is_ascii_digit());
        self.names.iter().any(|n| number(n) || words(n) >= 3)
            || (self.names.iter().any(|n| words(n) >= 2)
                && self.names.iter().any(|n| words(n) == 1))
    }

    /// The message for a first row that looks like data: the row, and the header line that
    /// would name its columns.
    fn not_a_header(&self) -> String {
        let (separator, shown) = match self.format {
            Format::Csv => (",", ","),
            _ => ("\t", "<TAB>"),
        };
        let (text, label) = (&self.wanted.text, &self.wanted.label);
        let suggestion = match self.names.as_slice() {
            [_] => format!("add the line {:?} at the top", text),
            [a, b] => {
                // the text is the field of more words (of more characters, if as many)
                let key = |n: &String| (n.split_whitespace().count(), n.chars().count());
                let line = if key(a) >= key(b) {
                    format!("{text}{shown}{label}")
                } else {
                    format!("{label}{shown}{text}")
                };
                format!("add the line {line:?} at the top")
            }
            _ => format!(
                "add a line at the top that names the text column {text:?} and the label \
                 column {label:?}"
            ),
        };
        format!(
            "the first row, {:?}, looks like data, not a header naming the columns; {suggestion} \
             (or, if it is the header, pick the columns with {})",
            cut(&self.names.join(separator), ECHO),
            self.flags
        )
    }
}

/// `text`, cut to at most `max` characters (the last of them `…`) when it is longer.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Reads the next record that is not a blank line into `record`, checks that all its fields are
/// UTF-8, and returns the line where it starts; `None` at the end.
fn next_record(
    records: &mut Records<impl BufRead>,
    record: &mut Vec<Vec<u8>>,
    path: &Path,
) -> Result<Option<usize>> {
    loop {
        let line = match records.next_record(record) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(RecordError::Io(e)) => return Err(Error::io(path, e)),
            Err(RecordError::Malformed { line, message }) => {
                return Err(Error::data(path, Some(line), message));
            }
        };
        for i in 0..record.len() {
            field(record, i, path, line)?;
        }
        if record.len() == 1 && field(record, 0, path, line)?.trim().is_empty() {
            continue;
        }
        return Ok(Some(line));
    }
}

/// Field `i` of `record` as text.
fn field<'r>(record: &'r [Vec<u8>], i: usize, path: &Path, line: usize) -> Result<&'r str> {
    std::str::from_utf8(&record[i]).map_err(|_| Error::data(path, Some(line), INVALID_UTF8))
}

/// A checked row: the (trimmed) label must not be empty; the text may be.
fn row(line: usize, text: &str, label: &str) -> Result<Row, &'static str> {
    if label.is_empty() {
        return Err("empty label");
    }
    if label.contains(['\n', '\r', '\t']) {
        // `rnn predict` prints one `label<TAB>probability` line a text
        return Err(
            "a label with a line break or a tab (labels are printed one a line, \
                    tab-separated)",
        );
    }
    Ok(Row {
        line,
        text: text.to_string(),
        label: label.to_string(),
    })
}

/// fastText's format: one `__label__NAME text` per line.
fn parse_fasttext(
    mut reader: impl BufRead,
    chosen: Chosen,
    path: &Path,
    max_bytes: usize,
    shard: Option<Shard>,
) -> Result<Vec<Row>> {
    let mut buf = Vec::new();
    let mut rows = Vec::new();
    let mut seen = 0;
    let mut line = 0;
    loop {
        line += 1;
        match read_line(&mut reader, &mut buf, max_bytes).map_err(|e| Error::io(path, e))? {
            Line::End => break,
            Line::Read => {}
            Line::TooLong => {
                let message = format!("a line {}", records::too_long(max_bytes));
                return Err(Error::data(path, Some(line), message));
            }
        }
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text =
            std::str::from_utf8(bytes).map_err(|_| Error::data(path, Some(line), INVALID_UTF8))?;
        if text.trim().is_empty() {
            continue;
        }
        let row = fasttext_row(line, text).map_err(|m| {
            // A first line without a label: perhaps the file is not in fastText's format at
            // all, and only its extension (or standard input) made it so.
            let m = if seen == 0 && m == NO_LABEL {
                not_fasttext(text, chosen)
            } else {
                m.to_string()
            };
            Error::data(path, Some(line), m)
        })?;
        if shard.is_none_or(|s| s.holds(seen)) {
            rows.push(row);
        }
        seen += 1;
    }
    if seen == 0 {
        return Err(Error::data(path, None, ONLY_BLANK));
    }
    Ok(rows)
}

const NO_LABEL: &str = "no __label__ at the start of the line";

/// The message for a first line without a `__label__`: what chose fastText's format, and the
/// `--format` that reads the file when the line looks like TSV or CSV.
fn not_fasttext(text: &str, chosen: Chosen) -> String {
    const WHAT: &str = "fastText's format (`__label__NAME text` a line)";
    let mut m = match chosen {
        Chosen::Extension => format!(
            "{NO_LABEL}: the file is read in {WHAT} because its name does not end in .tsv or \
             .csv"
        ),
        Chosen::Stdin => format!("{NO_LABEL}: standard input is read in {WHAT} by default"),
        Chosen::Given => format!("{NO_LABEL} ({WHAT})"),
    };
    if text.contains('\t') {
        m.push_str("; the line has tabs: for a TSV file, use --format tsv");
    } else if text.contains(',') {
        m.push_str("; the line has commas: for a CSV file, use --format csv");
    }
    m
}

/// One non-blank fastText line: the leading `__label__` tokens are labels (exactly one is
/// allowed), the rest is the text. A `__label__` later in the line is text.
fn fasttext_row(line: usize, s: &str) -> Result<Row, &'static str> {
    const PREFIX: &str = "__label__";
    let mut rest = s.trim_start();
    let mut label = None;
    while let Some(after) = rest.strip_prefix(PREFIX) {
        if label.is_some() {
            return Err("several labels on one line (multi-label data is not supported)");
        }
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        label = Some(&after[..end]);
        rest = after[end..].trim_start();
    }
    let label = label.ok_or(NO_LABEL)?;
    row(line, rest.trim_end(), label)
}

/// The texts of a file to predict, one at a time, without labels: a TSV or CSV file's text
/// column (a label column may be there or not, and is not read), or, in fastText's format, one
/// text a line with the `__label__` tokens it starts with removed.
///
/// A TSV or CSV file reads as for [`read_rows`]: a header row, then rows of as many fields,
/// blank lines skipped. In fastText's format every line is a text, a blank one too (an empty
/// text), so that one answer a line lines up with the input; a leading byte order mark is
/// dropped.
///
/// Rows are read as they are asked for, so that a pipe can be answered line by line: see
/// [`Texts::waiting`].
pub struct Texts<R: Read> {
    path: PathBuf,
    max_bytes: usize,
    /// The 1-based line of the last row read.
    line: usize,
    /// The reader failed, or a row was malformed: nothing more is read.
    failed: bool,
    source: Source<R>,
}

/// Where [`Texts`] reads from.
enum Source<R: Read> {
    /// fastText's format: the reader and the current line.
    Lines { reader: BufReader<R>, buf: Vec<u8> },
    /// TSV or CSV, after the header.
    Delimited {
        records: Records<BufReader<Unmarked<R>>>,
        record: Vec<Vec<u8>>,
        format: Format,
        text_col: usize,
        width: usize,
    },
}

/// What [`Texts`] yields: the line a text starts on, and the text.
pub type Text = (usize, String);

impl<R: Read> Texts<R> {
    /// Texts from `reader` in `format`; `path` names the source in messages. For TSV and CSV
    /// the header is read now, and must name the `text_col` column; `text_col` is not used
    /// in fastText's format.
    ///
    /// # Errors
    /// [`Error::Io`] when reading fails; [`Error::Data`] for an empty TSV/CSV input or a
    /// header without the column (naming the flag `--text-col`).
    pub fn new(
        reader: R,
        format: Format,
        path: &Path,
        text_col: &str,
        max_bytes: usize,
    ) -> Result<Self> {
        let source = match format {
            Format::FastText => Source::Lines {
                reader: BufReader::with_capacity(1 << 20, reader),
                buf: Vec::new(),
            },
            Format::Tsv | Format::Csv => {
                let (reader, _) = skip_bom(reader).map_err(|e| Error::io(path, e))?;
                let reader = BufReader::with_capacity(1 << 20, reader);
                let mut records = if format == Format::Tsv {
                    Records::tsv(reader, max_bytes)
                } else {
                    Records::csv(reader, max_bytes)
                };
                let mut record = Vec::new();
                let Some((line, names)) = read_header(&mut records, &mut record, path)? else {
                    return Err(Error::data(
                        path,
                        None,
                        "no header row (the file is empty or blank)",
                    ));
                };
                let header = Header {
                    line,
                    names,
                    format,
                    wanted: Columns {
                        text: text_col.to_string(),
                        ..Columns::default()
                    },
                    flags: "--text-col",
                };
                Source::Delimited {
                    text_col: header.column(text_col, "--text-col", path)?,
                    records,
                    record,
                    format,
                    width: header.names.len(),
                }
            }
        };
        Ok(Texts {
            path: path.to_path_buf(),
            max_bytes,
            line: 0,
            failed: false,
            source,
        })
    }

    /// Whether a whole line is already read in and waiting, so that the next text can be had
    /// without waiting for the source. (A CSV field over several lines may still have to
    /// wait for its end.)
    pub fn waiting(&self) -> bool {
        let buffer = match &self.source {
            Source::Lines { reader, .. } => reader.buffer(),
            Source::Delimited { records, .. } => records.get_ref().buffer(),
        };
        buffer.contains(&b'\n')
    }

    /// The next text, or `None` at the end.
    fn read(&mut self) -> Result<Option<Text>> {
        let path = self.path.as_path();
        match &mut self.source {
            Source::Lines { reader, buf } => {
                self.line += 1;
                let line = self.line;
                match read_line(reader, buf, self.max_bytes).map_err(|e| Error::io(path, e))? {
                    Line::End => return Ok(None),
                    Line::Read => {}
                    Line::TooLong => {
                        let message = format!("a line {}", records::too_long(self.max_bytes));
                        return Err(Error::data(path, Some(line), message));
                    }
                }
                let mut bytes = buf.strip_suffix(b"\n").unwrap_or(buf);
                bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                if line == 1 {
                    bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
                }
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| Error::data(path, Some(line), INVALID_UTF8))?;
                Ok(Some((line, strip_labels(text).to_string())))
            }
            Source::Delimited {
                records,
                record,
                format,
                text_col,
                width,
            } => {
                let Some(line) = next_record(records, record, path)? else {
                    return Ok(None);
                };
                self.line = line;
                if record.len() != *width {
                    let message = wrong_width(*format, *width, record.len());
                    return Err(Error::data(path, Some(line), message));
                }
                let text = field(record, *text_col, path, line)?;
                Ok(Some((line, text.to_string())))
            }
        }
    }
}

impl<R: Read> Iterator for Texts<R> {
    type Item = Result<Text>;

    /// The next text and its line; after an error, `None`.
    fn next(&mut self) -> Option<Result<Text>> {
        if self.failed {
            return None;
        }
        let next = self.read().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

/// The text of a line in fastText's format: without the `__label__…` tokens it starts with,
/// and without the white space before it.
pub fn strip_labels(line: &str) -> &str {
    let mut rest = line.trim_start();
    while rest.starts_with("__label__") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

/// The message for a row of `found` fields under a header of `width`: with a field too many in
/// a CSV file, most likely a comma in an unquoted text, how to write one.
fn wrong_width(format: Format, width: usize, found: usize) -> String {
    let mut m = format!("expected {width} fields, found {found}");
    if format == Format::Csv && found > width {
        m.push_str(
            "; a field that holds a comma must be in double quotes (\"good, really\"), or the \
             file written as TSV",
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: Format, name: &str, data: &[u8]) -> Result<Vec<Row>> {
        parse_rows(data, format, Path::new(name), &ReadOptions::default())
    }

    fn tsv(data: &str) -> Result<Vec<Row>> {
        parse(Format::Tsv, "data.tsv", data.as_bytes())
    }

    fn csv(data: &str) -> Result<Vec<Row>> {
        parse(Format::Csv, "data.csv", data.as_bytes())
    }

    fn fasttext(data: &str) -> Result<Vec<Row>> {
        parse(Format::FastText, "data.txt", data.as_bytes())
    }

    fn r(line: usize, text: &str, label: &str) -> Row {
        Row {
            line,
            text: text.to_string(),
            label: label.to_string(),
        }
    }

    /// The Display of the error, or a panic naming the rows that were read instead.
    fn err<T: std::fmt::Debug>(result: Result<Vec<T>>) -> String {
        match result {
            Ok(rows) => panic!("expected an error, read {rows:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Every text of `data` read by [`Texts`] as `format`, or the first error.
    fn texts(format: Format, name: &str, data: &str) -> Result<Vec<Text>> {
        Texts::new(data.as_bytes(), format, Path::new(name), "text", 1000)?.collect()
    }

    fn t(line: usize, text: &str) -> Text {
        (line, text.to_string())
    }

    #[test]
    fn texts_of_a_tsv_or_csv_are_its_text_column_label_or_not() {
        let data = "id\tlabel\ttext\n1\tpos\tgood film\n\n2\tneg\t  not good \n";
        assert_eq!(
            texts(Format::Tsv, "d.tsv", data).unwrap(),
            [t(2, "good film"), t(4, "  not good ")]
        );
        // no label column, a byte order mark, Windows line ends
        let data = "\u{feff}text\r\ngood film\r\n\"quoted\" too\r\n";
        assert_eq!(
            texts(Format::Tsv, "d.tsv", data).unwrap(),
            [t(2, "good film"), t(3, "\"quoted\" too")]
        );
        let data = "label,text\npos,\"good, really\"\nneg,\"two\nlines\"\nneg,\n";
        assert_eq!(
            texts(Format::Csv, "d.csv", data).unwrap(),
            [t(2, "good, really"), t(3, "two\nlines"), t(5, "")]
        );
        // a header alone holds no texts
        assert_eq!(texts(Format::Tsv, "d.tsv", "text\tlabel\n").unwrap(), []);
    }

    #[test]
    fn texts_in_fasttext_format_are_lines_without_their_labels() {
        let data = "\u{feff}__label__pos  good film\n\n  plain text \r\n__label__a __label__b x\n";
        assert_eq!(
            texts(Format::FastText, "d.txt", data).unwrap(),
            [t(1, "good film"), t(2, ""), t(3, "plain text "), t(4, "x")]
        );
        assert_eq!(texts(Format::FastText, "d.txt", "").unwrap(), []);
    }

    #[test]
    fn texts_errors_name_the_line_and_stop_the_reading() {
        assert_eq!(
            err(texts(Format::Tsv, "d.tsv", "review\tlabel\nhi\tx\n")),
            "d.tsv line 1: the header has no \"text\" column (it has: review, label); pick one \
             with --text-col"
        );
        assert_eq!(
            err(texts(Format::Tsv, "d.tsv", "\n \n")),
            "d.tsv: no header row (the file is empty or blank)"
        );
        let mut read = Texts::new(
            "text\tlabel\na\tx\nb\n c\tx\n".as_bytes(),
            Format::Tsv,
            Path::new("d.tsv"),
            "text",
            1000,
        )
        .unwrap();
        assert_eq!(read.next().unwrap().unwrap(), t(2, "a"));
        assert_eq!(
            read.next().unwrap().unwrap_err().to_string(),
            "d.tsv line 3: expected 2 fields, found 1"
        );
        assert!(read.next().is_none(), "nothing is read after an error");
        let read = Texts::new(&b"a\n\xff\n"[..], Format::FastText, "stdin".as_ref(), "", 9);
        assert_eq!(
            err(read.unwrap().collect::<Result<Vec<_>>>()),
            "stdin line 2: invalid UTF-8"
        );
    }

    #[test]
    fn fasttext_labels_are_stripped() {
        assert_eq!(strip_labels("__label__pos  very good"), "very good");
        assert_eq!(
            strip_labels("__label__a __label__b x __label__c"),
            "x __label__c"
        );
        assert_eq!(strip_labels("  plain text "), "plain text ");
        assert_eq!(strip_labels("__label__only"), "");
    }

    #[test]
    fn format_follows_the_extension_in_any_case() {
        assert_eq!(Format::of(Path::new("a/data.TSV")), Format::Tsv);
        assert_eq!(Format::of(Path::new("data.tsv")), Format::Tsv);
        assert_eq!(Format::of(Path::new("data.csv")), Format::Csv);
        assert_eq!(Format::of(Path::new("data.Csv")), Format::Csv);
        assert_eq!(Format::of(Path::new("data.txt")), Format::FastText);
        assert_eq!(Format::of(Path::new("data")), Format::FastText);
        assert_eq!(Format::of(Path::new("data.tsv.gz")), Format::FastText);
        assert_eq!(Format::of(Path::new(".tsv")), Format::FastText);
    }

    #[test]
    fn columns_default_to_text_and_label() {
        let columns = Columns::default();
        assert_eq!(
            (columns.text.as_str(), columns.label.as_str()),
            ("text", "label")
        );
    }

    #[test]
    fn tsv_columns_in_any_order_and_extra_columns_ignored() {
        let rows = tsv("id\tlabel\ttext\n1\tpos\tgood film\n2\t neg \t  not good \n").unwrap();
        assert_eq!(rows, [r(2, "good film", "pos"), r(3, "  not good ", "neg")]);
    }

    #[test]
    fn tsv_quotes_are_ordinary_characters() {
        let rows =
            tsv("text\tlabel\n\"great\" film\tpos\nhe said \"meh\tneg\n\"\"\tneu\n").unwrap();
        assert_eq!(
            rows,
            [
                r(2, "\"great\" film", "pos"),
                r(3, "he said \"meh", "neg"),
                r(4, "\"\"", "neu"),
            ]
        );
    }

    #[test]
    fn tsv_blank_lines_are_skipped_and_lines_stay_physical() {
        let rows = tsv("\n\ntext\tlabel\n\na\tx\n\r\n   \n\nb\ty\n\n").unwrap();
        assert_eq!(rows, [r(5, "a", "x"), r(9, "b", "y")]);
        // Line numbers after blank lines are right in errors too.
        assert_eq!(
            err(tsv("text\tlabel\n\n\na\tx\n\n\nshort\n")),
            "data.tsv line 7: expected 2 fields, found 1"
        );
    }

    #[test]
    fn tsv_without_a_final_newline() {
        assert_eq!(tsv("text\tlabel\na\tx").unwrap(), [r(2, "a", "x")]);
        assert_eq!(
            err(tsv("text\tlabel\na\tx\nb\t")),
            "data.tsv line 3: empty label"
        );
    }

    #[test]
    fn shards_partition_the_rows_and_every_row_is_still_checked() {
        let data = "text\tlabel\na\tx\n\nb\ty\nc\tx\nd\ty\ne\tx\n";
        let read = |index, count, data: &str| {
            let options = ReadOptions {
                shard: Some(Shard { index, count }),
                ..ReadOptions::default()
            };
            parse_rows(data.as_bytes(), Format::Tsv, "data.tsv".as_ref(), &options)
        };
        let texts = |rows: Vec<Row>| rows.into_iter().map(|r| r.text).collect::<Vec<_>>();
        // the blank line is not a row: rows 0, 2, 4 and 1, 3
        assert_eq!(texts(read(0, 2, data).unwrap()), ["a", "c", "e"]);
        assert_eq!(texts(read(1, 2, data).unwrap()), ["b", "d"]);
        // lines keep their numbers
        assert_eq!(read(1, 2, data).unwrap()[0].line, 4);
        // a shard without rows is not an error; a bad row in another shard is
        assert!(read(7, 8, data).unwrap().is_empty());
        let bad = "text\tlabel\na\tx\nb\t\n";
        let err = read(0, 2, bad).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("empty label"),
            "{err}"
        );
        let fasttext = "__label__x a\n__label__y b\n__label__x c\n";
        let options = ReadOptions {
            shard: Some(Shard { index: 1, count: 2 }),
            ..ReadOptions::default()
        };
        let rows = parse_rows(
            fasttext.as_bytes(),
            Format::FastText,
            "d.txt".as_ref(),
            &options,
        );
        assert_eq!(texts(rows.unwrap()), ["b"]);
    }

    #[test]
    fn crlf_line_endings_leave_no_carriage_return() {
        let rows = tsv("text\tlabel\r\ngood\tpos\r\n\r\nbad\tneg\r\n").unwrap();
        assert_eq!(rows, [r(2, "good", "pos"), r(4, "bad", "neg")]);
        // The label is the last column: its '\r' must go even though the text keeps its spaces.
        let rows = tsv("label\ttext\r\npos\tgood \r\n").unwrap();
        assert_eq!(rows, [r(2, "good ", "pos")]);
        let rows = csv("text,label\r\n\"a,b\",pos\r\n\"c\",\"neg\"\r\n").unwrap();
        assert_eq!(rows, [r(2, "a,b", "pos"), r(3, "c", "neg")]);
    }

    #[test]
    fn csv_quoting_commas_doubled_quotes_and_newlines() {
        let data = "label,text\n\
                    pos,\"good, really\"\n\
                    neg,\"he said \"\"bad\"\"\"\n\
                    pos,\"line one\nline two\n\nline four\"\n\
                    neg,plain\n";
        assert_eq!(
            csv(data).unwrap(),
            [
                r(2, "good, really", "pos"),
                r(3, "he said \"bad\"", "neg"),
                r(4, "line one\nline two\n\nline four", "pos"),
                r(8, "plain", "neg"),
            ]
        );
        // An error after a multi-line field names the right line.
        let data = "text,label\n\"a\nb\nc\",x\nd\n";
        assert_eq!(
            err(csv(data)),
            "data.csv line 5: expected 2 fields, found 1"
        );
    }

    #[test]
    fn custom_column_names() {
        let columns = ReadOptions {
            columns: Columns {
                text: "review".to_string(),
                label: "sentiment".to_string(),
            },
            ..ReadOptions::default()
        };
        let data = b"sentiment,id,review\npos,1,nice\n";
        let rows = parse_rows(&data[..], Format::Csv, Path::new("d.csv"), &columns).unwrap();
        assert_eq!(rows, [r(2, "nice", "pos")]);
    }

    #[test]
    fn header_names_are_trimmed_and_a_bom_is_dropped() {
        assert_eq!(
            tsv("\u{feff}text\t label \nhi\tx\n").unwrap(),
            [r(2, "hi", "x")]
        );
        assert_eq!(
            csv("\u{feff}\"label\",text\nx,hi\n").unwrap(),
            [r(2, "hi", "x")]
        );
        // A BOM before a blank first line still counts lines right.
        assert_eq!(
            tsv("\u{feff}\ntext\tlabel\nhi\tx\n").unwrap(),
            [r(3, "hi", "x")]
        );
    }

    #[test]
    fn a_missing_column_names_the_flag_and_lists_the_header() {
        assert_eq!(
            err(tsv("id\ttext\tsentiment\n1\thi\tpos\n")),
            "data.tsv line 1: the header has no \"label\" column (it has: id, text, sentiment); \
             pick one with --label-col"
        );
        assert_eq!(
            err(csv("review,label\nhi,pos\n")),
            "data.csv line 1: the header has no \"text\" column (it has: review, label); \
             pick one with --text-col"
        );
        // A header on a later line (after blank lines) is named by that line.
        assert_eq!(
            err(tsv("\ntext\n")),
            "data.tsv line 2: the header has no \"label\" column (it has: text); \
             pick one with --label-col"
        );
    }

    #[test]
    fn a_first_line_without_a_label_says_what_chose_fasttext_and_which_format_fits() {
        // Issue 27: a TSV file named .txt got only "no __label__ at the start of the line".
        let dir = tempfile::tempdir().unwrap();
        let read = |name: &str, data: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            let e = read_rows(&path, &ReadOptions::default()).unwrap_err();
            let message = e.to_string();
            message[dir.path().to_str().unwrap().len() + 1..].to_string()
        };
        assert_eq!(
            read("data.txt", "text\tlabel\ngood\tpos\n"),
            "data.txt line 1: no __label__ at the start of the line: the file is read in \
             fastText's format (`__label__NAME text` a line) because its name does not end in \
             .tsv or .csv; the line has tabs: for a TSV file, use --format tsv"
        );
        assert_eq!(
            read("reviews", "\n\ntext,label\n"),
            "reviews line 3: no __label__ at the start of the line: the file is read in \
             fastText's format (`__label__NAME text` a line) because its name does not end in \
             .tsv or .csv; the line has commas: for a CSV file, use --format csv"
        );
        assert_eq!(
            read("notes.txt", "just some words\n"),
            "notes.txt line 1: no __label__ at the start of the line: the file is read in \
             fastText's format (`__label__NAME text` a line) because its name does not end in \
             .tsv or .csv"
        );
        // Asked for fastText's format, the message says what it is; after a good line, a
        // bad one is only a bad line.
        assert_eq!(
            err(fasttext("a\tb\n")),
            "data.txt line 1: no __label__ at the start of the line (fastText's format \
             (`__label__NAME text` a line)); the line has tabs: for a TSV file, use --format tsv"
        );
        assert_eq!(
            err(fasttext("__label__a x\ny\tz\n")),
            "data.txt line 2: no __label__ at the start of the line"
        );
    }

    #[test]
    fn a_first_row_that_looks_like_data_is_not_taken_for_a_header() {
        // Issue 27: the whole first row was shown as "the header", with only --text-col to try.
        assert_eq!(
            err(tsv("the food was good\tpositive\nbad\tnegative\n")),
            "data.tsv line 1: the first row, \"the food was good\\tpositive\", looks like data, \
             not a header naming the columns; add the line \"text<TAB>label\" at the top (or, if \
             it is the header, pick the columns with --text-col and --label-col)"
        );
        // the suggested header follows the row's order, in the file's separator
        assert_eq!(
            err(csv("positive,not bad\n")),
            "data.csv line 1: the first row, \"positive,not bad\", looks like data, not a \
             header naming the columns; add the line \"label,text\" at the top (or, if it is the \
             header, pick the columns with --text-col and --label-col)"
        );
        // a number is no column name
        assert!(err(tsv("3\tgreat\n")).contains("add the line \"label<TAB>text\" at the top"));
        assert!(err(tsv("7\tgreat film\tpos\n")).contains(
            "add a line at the top that names the text column \"text\" and the label \
                 column \"label\""
        ));
        // A long row is quoted up to 80 characters.
        let long = format!("{}\tpos\n", "word ".repeat(40));
        let quoted = format!("\"{}…\"", "word ".repeat(16).trim_end_matches(' '));
        assert_eq!(quoted.chars().count(), 80 + 2, "80 characters in quotes");
        let message = err(tsv(&long));
        assert!(
            message.contains(&format!("first row, {quoted}, looks")),
            "{message}"
        );
        // For predicting, one text a line without a header.
        let message = err(texts(Format::Tsv, "d.tsv", "the food was good\nbad\n"));
        assert_eq!(
            message,
            "d.tsv line 1: the first row, \"the food was good\", looks like data, not a header \
             naming the columns; add the line \"text\" at the top (or, if it is the header, \
             pick the columns with --text-col)"
        );
        // Names that are names are listed as before, up to 80 characters.
        let names: Vec<String> = (0..20).map(|i| format!("column_{i:02}")).collect();
        let message = err(tsv(&format!("{}\n", names.join("\t"))));
        let listed = format!("{}…", &names.join(", ")[..79]);
        assert_eq!(
            message,
            format!(
                "data.tsv line 1: the header has no \"text\" column (it has: {listed}); pick \
                 one with --text-col"
            )
        );
    }

    #[test]
    fn ambiguous_columns_are_errors() {
        assert_eq!(
            err(tsv("text\tlabel\ttext\na\tb\tc\n")),
            "data.tsv line 1: the header has several \"text\" columns"
        );
        let same = ReadOptions {
            columns: Columns {
                text: "x".to_string(),
                label: "x".to_string(),
            },
            ..ReadOptions::default()
        };
        let e = parse_rows(&b"x\ny\n"[..], Format::Tsv, Path::new("d.tsv"), &same).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--text-col and --label-col both name the column \"x\""
        );
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_names_its_line() {
        assert_eq!(
            err(tsv("id\ttext\tlabel\n1\ta\tx\n2\tb\n")),
            "data.tsv line 3: expected 3 fields, found 2"
        );
        assert_eq!(
            err(tsv("id\ttext\tlabel\n1\ta\tx\textra\n")),
            "data.tsv line 2: expected 3 fields, found 4"
        );
        // In a CSV file, a field too many is most likely an unquoted comma (issue 27).
        assert_eq!(
            err(csv("text,label\ngood, really,pos\n")),
            "data.csv line 2: expected 2 fields, found 3; a field that holds a comma must be in \
             double quotes (\"good, really\"), or the file written as TSV"
        );
        assert_eq!(
            err(csv("id,text,label\n1,a\n")),
            "data.csv line 2: expected 3 fields, found 2"
        );
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let data = b"text\tlabel\ngood\tpos\nbad \xff\tneg\n";
        assert_eq!(
            err(parse(Format::Tsv, "data.tsv", data)),
            "data.tsv line 3: invalid UTF-8"
        );
        // In a column that is not used, too.
        let data = b"id\ttext\tlabel\n1\tgood\tpos\n\xc3\tbad\tneg\n";
        assert_eq!(
            err(parse(Format::Tsv, "data.tsv", data)),
            "data.tsv line 3: invalid UTF-8"
        );
        let data = b"text,label\n\"a\nb\xe2\x82\",neg\n";
        assert_eq!(
            err(parse(Format::Csv, "data.csv", data)),
            "data.csv line 2: invalid UTF-8"
        );
        let data = b"te\xffxt\tlabel\n";
        assert_eq!(
            err(parse(Format::Tsv, "data.tsv", data)),
            "data.tsv line 1: invalid UTF-8"
        );
    }

    #[test]
    fn an_empty_text_is_an_example_and_an_empty_label_an_error() {
        let rows = tsv("text\tlabel\na\tx\n  \ty\n").unwrap();
        assert_eq!(
            (rows[1].line, rows[1].text.as_str(), rows[1].label.as_str()),
            (3, "  ", "y")
        );
        assert_eq!(
            err(tsv("text\tlabel\na\t \n")),
            "data.tsv line 2: empty label"
        );
        assert_eq!(csv("text,label\n\"\",x\n").unwrap()[0].text, "");
    }

    #[test]
    fn files_without_examples() {
        assert_eq!(err(tsv("")), "data.tsv: no examples (the file is empty)");
        assert_eq!(
            err(csv("\u{feff}")),
            "data.csv: no examples (the file is empty)"
        );
        assert_eq!(
            err(fasttext("")),
            "data.txt: no examples (the file is empty)"
        );
        assert_eq!(
            err(tsv("text\tlabel\n")),
            "data.tsv: no examples after the header"
        );
        assert_eq!(
            err(csv("text,label\r\n\r\n\n")),
            "data.csv: no examples after the header"
        );
        assert_eq!(
            err(tsv("\n \n")),
            "data.tsv: no examples (the file has only blank lines)"
        );
        assert_eq!(
            err(fasttext("\n\r\n  \n")),
            "data.txt: no examples (the file has only blank lines)"
        );
    }

    #[test]
    fn fasttext_one_label_per_line() {
        let rows = fasttext(
            "__label__pos  good film \n__label__neg\tbad\r\n  __label__neg not __label__x at all\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            [
                r(1, "good film", "pos"),
                r(2, "bad", "neg"),
                r(3, "not __label__x at all", "neg"),
            ]
        );
    }

    #[test]
    fn fasttext_blank_lines_are_skipped_and_lines_stay_physical() {
        let rows = fasttext("\n__label__a x\n\r\n   \n__label__b y").unwrap();
        assert_eq!(rows, [r(2, "x", "a"), r(5, "y", "b")]);
        let rows = parse(Format::FastText, "data.txt", b"\xEF\xBB\xBF__label__a x\n").unwrap();
        assert_eq!(rows, [r(1, "x", "a")]);
    }

    #[test]
    fn fasttext_malformed_lines() {
        assert_eq!(
            err(fasttext("__label__a x\n\n__label__a __label__b y\n")),
            "data.txt line 3: several labels on one line (multi-label data is not supported)"
        );
        assert_eq!(
            err(fasttext("__label__a x\nno label here\n")),
            "data.txt line 2: no __label__ at the start of the line"
        );
        assert_eq!(
            err(fasttext("x __label__a\n")),
            "data.txt line 1: no __label__ at the start of the line (fastText's format \
             (`__label__NAME text` a line))"
        );
        assert_eq!(
            err(fasttext("__label__ x\n")),
            "data.txt line 1: empty label"
        );
        assert_eq!(fasttext("__label__a   \n").unwrap()[0].text, "");
        assert_eq!(
            err(parse(
                Format::FastText,
                "data.txt",
                b"__label__a x\n__label__b \xc3(\n"
            )),
            "data.txt line 2: invalid UTF-8"
        );
    }

    #[test]
    fn read_rows_reads_a_file_by_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.CSV");
        std::fs::write(&path, "label,text\npos,\"a, b\"\nneg,c\n").unwrap();
        assert_eq!(
            read_rows(&path, &ReadOptions::default()).unwrap(),
            [r(2, "a, b", "pos"), r(3, "c", "neg")]
        );
        let path = dir.path().join("data.train");
        std::fs::write(&path, "__label__pos a, b\n").unwrap();
        assert_eq!(
            read_rows(&path, &ReadOptions::default()).unwrap(),
            [r(1, "a, b", "pos")]
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.tsv");
        let e = read_rows(&path, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Io { path: p, .. } if *p == path),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("{}: No such file or directory (os error 2)", path.display())
        );
        // A directory opens but is no data file.
        let e = read_rows(dir.path(), &ReadOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: a directory, not a data file", dir.path().display())
        );
    }

    #[test]
    fn read_errors_while_reading_rows_are_io_errors() {
        /// Gives `data`, then fails.
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let cases: [(Format, &[u8]); 3] = [
            (Format::Tsv, b"text\tlabel\na\tb\n"),
            (Format::Csv, b"text,label\na,b\n"),
            (Format::FastText, b"__label__a b\n"),
        ];
        for (format, data) in cases {
            let reader = Failing(data);
            let e =
                parse_rows(reader, format, Path::new("d"), &ReadOptions::default()).unwrap_err();
            assert!(matches!(&e, Error::Io { .. }), "{format:?}: {e:?}");
            assert_eq!(e.to_string(), "d: disk on fire");
        }
    }

    #[test]
    fn a_long_file_is_read_in_one_pass() {
        let mut data = String::from("text\tlabel\n");
        for i in 0..20_000 {
            data.push_str(&format!("word {i} \"quoted\"\t{}\n", i % 3));
        }
        let rows = tsv(&data).unwrap();
        assert_eq!(rows.len(), 20_000);
        assert_eq!(rows[19_999], r(20_001, "word 19999 \"quoted\"", "1"));
    }
}
