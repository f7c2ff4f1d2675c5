//! Records of a delimited text file, read strictly, with the line where each starts and a cap
//! on how long one may be.
//!
//! - TSV ([`Records::tsv`]): a record is a line, its fields separated by tabs; a `"` is an
//!   ordinary character.
//! - CSV ([`Records::csv`]): RFC 4180. A field that starts with `"` is quoted: it ends at the
//!   next lone `"`, holds commas, line breaks and doubled quotes (`""` is one `"`), and must be
//!   followed by a comma or the end of the record. A quote that is never closed, or text after
//!   a closing quote (`"c, d"x`), is an error that names the line of the quote. A `"` inside a
//!   field that does not start with one is an ordinary character (`5" screen`), as most
//!   writers produce it.
//!
//! Records end at `\n`; a `\r` before it is dropped, so Windows files read the same. A record
//! longer than the cap is an error naming its line, read no further than the cap: a file with
//! no line break at all (`/dev/zero`) costs the cap, not all the memory there is.

use crate::error::Setting;
use std::io::{BufRead, ErrorKind};

/// The default cap on a record's (or a line's) length in bytes: 1 MiB, some 170,000 words. A
/// text that long takes about a hundred times its size in memory to train on.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// What went wrong reading a record.
#[derive(Debug)]
pub enum RecordError {
    /// The reader failed.
    Io(std::io::Error),
    /// The file is malformed at `line` (1-based).
    Malformed { line: usize, message: String },
}

impl From<std::io::Error> for RecordError {
    fn from(e: std::io::Error) -> Self {
        RecordError::Io(e)
    }
}

/// The message for a record or line over the cap.
pub fn too_long(max_bytes: usize) -> String {
    format!(
        "longer than {max_bytes} bytes; raise the limit with {} if it is meant to be",
        Setting::MaxRowBytes
    )
}

/// Where the parser is within a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a `"` in a quoted field: the end of the field, or the first of `""`.
    QuoteInQuoted,
    /// After a closing quote and a `\r`: only `\n` may follow.
    CrAfterQuote,
}

/// Reads records one at a time from a [`BufRead`].
pub struct Records<R> {
    reader: R,
    delimiter: u8,
    quoting: bool,
    max_bytes: usize,
    /// `\n`s consumed so far.
    newlines: usize,
}

impl<R: BufRead> Records<R> {
    /// Tab-separated records, without quoting.
    pub fn tsv(reader: R, max_bytes: usize) -> Self {
        Records::new(reader, b'\t', false, max_bytes)
    }

    /// Comma-separated records with RFC 4180 quoting.
    pub fn csv(reader: R, max_bytes: usize) -> Self {
        Records::new(reader, b',', true, max_bytes)
    }

    fn new(reader: R, delimiter: u8, quoting: bool, max_bytes: usize) -> Self {
        Records {
            reader,
            delimiter,
            quoting,
            max_bytes,
            newlines: 0,
        }
    }

    /// The reader, to see what it holds already (as [`std::io::BufReader::buffer`]).
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// Reads the next record's fields into `fields` (cleared first) and returns the line where
    /// it starts, or `None` at the end of the input. A blank line is a record of one empty
    /// field.
    ///
    /// # Errors
    /// [`RecordError::Io`] when reading fails; [`RecordError::Malformed`] for a quote never
    /// closed, text after a closing quote, or a record over the cap.
    pub fn next_record(&mut self, fields: &mut Vec<Vec<u8>>) -> Result<Option<usize>, RecordError> {
        fields.clear();
        let start = self.newlines + 1;
        let mut field = Vec::new();
        let mut state = State::FieldStart;
        let mut bytes = 0usize;
        let mut quote_line = start;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if chunk.is_empty() {
                // the end of the input
                return match state {
                    State::Quoted => Err(RecordError::Malformed {
                        line: quote_line,
                        message: "the quote that opens a field here is never closed".into(),
                    }),
                    _ if !any => Ok(None),
                    _ => {
                        fields.push(finish(field, state));
                        Ok(Some(start))
                    }
                };
            }
            any = true;
            let mut used = 0;
            let mut ended = false;
            let mut failed = None;
            for &b in chunk {
                used += 1;
                if b == b'\n' {
                    self.newlines += 1;
                }
                match (state, b) {
                    (State::FieldStart, b'"') if self.quoting => {
                        state = State::Quoted;
                        quote_line = self.newlines + 1;
                    }
                    (State::FieldStart | State::Unquoted, b'\n')
                    | (State::QuoteInQuoted | State::CrAfterQuote, b'\n') => {
                        ended = true;
                    }
                    (State::FieldStart | State::Unquoted | State::QuoteInQuoted, d)
                        if d == self.delimiter =>
                    {
                        fields.push(finish(std::mem::take(&mut field), state));
                        state = State::FieldStart;
                    }
                    (State::FieldStart | State::Unquoted, _) => {
                        field.push(b);
                        state = State::Unquoted;
                    }
                    (State::Quoted, b'"') => state = State::QuoteInQuoted,
                    (State::Quoted, _) => field.push(b),
                    (State::QuoteInQuoted, b'"') => {
                        field.push(b'"');
                        state = State::Quoted;
                    }
                    (State::QuoteInQuoted, b'\r') => state = State::CrAfterQuote,
                    (State::QuoteInQuoted | State::CrAfterQuote, other) => {
                        failed = Some(RecordError::Malformed {
                            line: quote_line,
                            message: format!(
                                "text after the closing quote of a quoted field ({}); a quote \
                                 inside a quoted field is written twice (\"\")",
                                describe(other)
                            ),
                        });
                        break;
                    }
                }
                if ended {
                    break;
                }
                if bytes + used > self.max_bytes {
                    failed = Some(RecordError::Malformed {
                        line: start,
                        message: format!("a row {}", too_long(self.max_bytes)),
                    });
                    break;
                }
            }
            bytes += used;
            self.reader.consume(used);
            if let Some(e) = failed {
                return Err(e);
            }
            if ended {
                fields.push(finish(field, state));
                return Ok(Some(start));
            }
        }
    }
}

/// A field as it ends: an unquoted last field without the `\r` of a `\r\n`.
fn finish(mut field: Vec<u8>, state: State) -> Vec<u8> {
    if state == State::Unquoted && field.last() == Some(&b'\r') {
        field.pop();
    }
    field
}

/// A byte as a message shows it.
fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("{:?}", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// How [`read_line`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line was read (its `\n`, if any, included).
    Read,
    /// The input has ended.
    End,
    /// The line is longer than the cap: `buf` holds its first bytes, and the rest is unread.
    TooLong,
}

/// Appends the next line of `reader` to `buf` (cleared first), reading at most `max_bytes`
/// bytes and its `\n`.
///
/// # Errors
/// When reading fails.
pub fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max_bytes: usize,
) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if buf.is_empty() {
                Line::End
            } else {
                Line::Read
            });
        }
        let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = max_bytes + 1 - buf.len().min(max_bytes + 1);
        if used > room {
            buf.extend_from_slice(&chunk[..room]);
            reader.consume(room);
            // a line of exactly max_bytes and its '\n' fits
            if buf.len() == max_bytes + 1 && buf.last() == Some(&b'\n') {
                return Ok(Line::Read);
            }
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&chunk[..used]);
        reader.consume(used);
        if done {
            return Ok(Line::Read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(records: &mut Records<&[u8]>) -> Result<Vec<(usize, Vec<String>)>, String> {
        let mut fields = Vec::new();
        let mut out = Vec::new();
        loop {
            match records.next_record(&mut fields) {
                Ok(Some(line)) => out.push((
                    line,
                    fields
                        .iter()
                        .map(|f| String::from_utf8(f.clone()).unwrap())
                        .collect(),
                )),
                Ok(None) => return Ok(out),
                Err(RecordError::Malformed { line, message }) => {
                    return Err(format!("line {line}: {message}"));
                }
                Err(RecordError::Io(e)) => return Err(e.to_string()),
            }
        }
    }

    fn csv(data: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
        all(&mut Records::csv(data.as_bytes(), 100))
    }

    fn rec(line: usize, fields: &[&str]) -> (usize, Vec<String>) {
        (line, fields.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn csv_quoting_as_rfc_4180_writes_it() {
        assert_eq!(
            csv("a,\"b, c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",x,\r\nlast,5\" screen,\"\""),
            Ok(vec![
                rec(1, &["a", "b, c", "say \"hi\""]),
                rec(2, &["two\nlines", "x", ""]),
                rec(4, &["last", "5\" screen", ""]),
            ])
        );
        assert_eq!(
            csv("\n\na\n"),
            Ok(vec![rec(1, &[""]), rec(2, &[""]), rec(3, &["a"])])
        );
        assert_eq!(csv(""), Ok(vec![]));
    }

    #[test]
    fn a_quote_never_closed_names_the_line_where_it_opens() {
        assert_eq!(
            csv("text,label\ngood,pos\nfine,\"pos\nawful,neg\nbad,neg\n"),
            Err("line 3: the quote that opens a field here is never closed".into())
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        assert_eq!(
            csv("a,b\n\"c, d\"x,e\n"),
            Err(
                "line 2: text after the closing quote of a quoted field ('x'); a quote inside \
                 a quoted field is written twice (\"\")"
                    .into()
            )
        );
        assert_eq!(
            csv("\"a\"\rb\n").unwrap_err(),
            "line 1: text after the closing quote of a quoted field ('b'); a quote inside a \
             quoted field is written twice (\"\")"
        );
    }

    #[test]
    fn tsv_has_no_quotes() {
        assert_eq!(
            all(&mut Records::tsv("\"a\tb\"\r\nc\n".as_bytes(), 100)),
            Ok(vec![rec(1, &["\"a", "b\""]), rec(2, &["c"])])
        );
    }

    #[test]
    fn a_record_over_the_cap_is_an_error_and_is_not_read_whole() {
        let long = format!("a,b\n{}\n", "x".repeat(10_000));
        let mut records = Records::csv(long.as_bytes(), 1000);
        let mut fields = Vec::new();
        assert_eq!(records.next_record(&mut fields).unwrap(), Some(1));
        match records.next_record(&mut fields) {
            Err(RecordError::Malformed { line: 2, message }) => {
                assert!(
                    message.starts_with("a row longer than 1000 bytes"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        // a record of exactly the cap is read
        let exact = format!("{}\n", "y".repeat(1000));
        assert_eq!(
            all(&mut Records::tsv(exact.as_bytes(), 1000)).unwrap()[0].1[0].len(),
            1000
        );
        // an endless input costs the cap, not the input
        let mut zeros = Records::tsv(std::io::BufReader::new(std::io::repeat(0)), 1 << 16);
        assert!(matches!(
            zeros.next_record(&mut fields),
            Err(RecordError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn read_line_stops_at_the_cap() {
        let mut buf = Vec::new();
        let mut input = "abc\ndefgh\nij".as_bytes();
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Line::Read);
        assert_eq!(buf, b"abc\n");
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Line::TooLong);
        let mut input = "abcd\nij".as_bytes();
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Line::Read);
        assert_eq!(buf, b"abcd\n");
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Line::Read);
        assert_eq!(buf, b"ij");
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Line::End);
        let mut zeros = std::io::BufReader::new(std::io::repeat(0));
        assert_eq!(
            read_line(&mut zeros, &mut buf, 1 << 16).unwrap(),
            Line::TooLong
        );
        assert_eq!(buf.len(), (1 << 16) + 1);
    }
}
