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
use std::io::{BufRead, BufReader, Chain, Cursor, ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::data::records::{self, Line, RecordError, Records, read_line};
use crate::error::{Error, Result, Setting};

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
    let file = crate::fsutil::open_regular(path, "a data file")?;
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
            "{} and {} both name the column {:?}",
            Setting::TextCol,
            Setting::LabelCol,
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
        flags: &[Setting::TextCol, Setting::LabelCol],
    };
    let text_col = header.column(&columns.text, Setting::TextCol, path)?;
    let label_col = header.column(&columns.label, Setting::LabelCol, path)?;
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
    /// The settings that name other columns.
    flags: &'static [Setting],
}

/// The most characters of a row (or a list of names) that a message quotes.
const ECHO: usize = 80;

impl Header {
    /// The index of the column `name`; an error naming `flag`, which picks another column,
    /// when there is none (saying so when the row looks like data rather than a header), or
    /// when there are several.
    fn column(&self, name: &str, flag: Setting, path: &Path) -> Result<usize> {
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
                .iter()
                .map(Setting::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
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
        m.push_str(&format!(
            "; the line has tabs: for a TSV file, use {} tsv",
            Setting::Format
        ));
    } else if text.contains(',') {
        m.push_str(&format!(
            "; the line has commas: for a CSV file, use {} csv",
            Setting::Format
        ));
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
                    flags: &[Setting::TextCol],
                };
                Source::Delimited {
                    text_col: header.column(text_col, Setting::TextCol, path)?,
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
mod tests;
