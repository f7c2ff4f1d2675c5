//! Pretrained word vectors in the `.vec` text format that fastText and GloVe publish: one word
//! a line, then its `D` numbers, separated by spaces; fastText's files start with a header line
//! `N D` (the number of words and the dimension), GloVe's do not.
//!
//! ```text
//! 2000000 300
//! the 0.0231 -0.0112 ... (300 numbers)
//! , 0.0045 0.0201 ...
//! ```
//!
//! A file of millions of words is streamed: only the rows of a vocabulary's words are kept.
//! The last `D` fields of a line are its numbers and the rest its word, so a word holding a
//! space (some GloVe files have them) is read whole.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::vocab::Vocab;
use crate::error::{Error, Result};

/// The vectors of a vocabulary's words found in a `.vec` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The dimension of the file's vectors.
    pub dim: usize,
    /// `(token id, vector)` for every vocabulary word the file holds (its first line for it).
    pub rows: Vec<(u32, Vec<f32>)>,
    /// Words the file holds in all.
    pub words: usize,
}

impl Found {
    /// The share of `vocab`'s tokens (`<unk>` aside) that have a vector.
    pub fn coverage(&self, vocab: &Vocab) -> f64 {
        let known = vocab.len() - usize::from(vocab.unk().is_some());
        self.rows.len() as f64 / known.max(1) as f64
    }
}

/// The dimension of the vectors in the `.vec` file at `path`: the header's, or else the number
/// of numbers on the first line.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Data`] naming line 1 if it holds
/// neither a header nor a vector.
pub fn dimension(path: &Path) -> Result<usize> {
    let file = crate::fsutil::open_regular(path, "a file of word vectors")?;
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .map_err(|e| Error::data(path, Some(1), format!("not text: {e}")))?;
    match first_line(&first) {
        First::Header { dim, .. } | First::Vector { dim } => Ok(dim),
        First::Neither => Err(Error::data(path, Some(1), not_vectors(&first))),
    }
}

/// What the first line of a `.vec` file is.
enum First {
    /// fastText's `N D`.
    Header {
        dim: usize,
    },
    /// A word and its `dim` numbers (GloVe has no header).
    Vector {
        dim: usize,
    },
    Neither,
}

fn first_line(line: &str) -> First {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if let [n, d] = fields[..]
        && n.parse::<u64>().is_ok()
        && let Ok(dim) = d.parse::<usize>()
        && dim > 0
    {
        return First::Header { dim };
    }
    let numbers = fields
        .iter()
        .skip(1)
        .take_while(|f| f.parse::<f32>().is_ok())
        .count();
    if fields.len() >= 2 && numbers == fields.len() - 1 {
        First::Vector { dim: numbers }
    } else {
        First::Neither
    }
}

/// The fields of `text` separated by spaces (runs of them count as one), in one pass.
fn count_fields(text: &str) -> usize {
    let mut previous = b' ';
    let mut fields = 0;
    for b in text.bytes() {
        fields += usize::from(previous == b' ' && b != b' ');
        previous = b;
    }
    fields
}

/// Whether a field looks like a number: made of digits, signs, points and exponents (checked
/// byte by byte, which is what keeps a file of millions of words quick to read: only the
/// vocabulary's vectors are parsed), or else parsed as one (`nan`, `inf`).
fn looks_like_number(field: &str) -> bool {
    field.bytes().all(is_number_byte) || field.parse::<f32>().is_ok()
}

/// Whether `b` is one of a number's characters: a digit, a sign, a point or an exponent.
fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')
}

/// The message for a first line that is not a `.vec` file's.
fn not_vectors(line: &str) -> String {
    let shown: String = line.trim_end().chars().take(80).collect();
    format!(
        "not a file of word vectors: the first line ({shown:?}) is neither a header \"WORDS \
         DIMENSION\" nor a word followed by its numbers"
    )
}

/// Reads the vectors of `vocab`'s words from the `.vec` file at `path`, whose vectors must
/// have `dim` numbers. Every line's count of numbers is checked (a field of other characters
/// than a number's is an error); only the vocabulary's rows are parsed and kept.
///
/// # Errors
/// [`Error::Data`] naming the file and the line for a line with another number of numbers
/// (and both counts), a field that is not a number, or bytes that are not UTF-8; [`Error::Io`]
/// if the file cannot be read.
pub fn read_for(path: &Path, vocab: &Vocab, dim: usize) -> Result<Found> {
    let file = crate::fsutil::open_regular(path, "a file of word vectors")?;
    let mut reader = BufReader::new(file);
    let mut found = Found {
        dim,
        rows: Vec::new(),
        words: 0,
    };
    let mut seen = vec![false; vocab.len()];
    let mut bytes = Vec::new();
    let mut line_number = 0;
    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let at = |message: String| Error::data(path, Some(line_number), message);
        let line = std::str::from_utf8(&bytes).map_err(|e| {
            at(format!(
                "byte {} is not UTF-8: a .vec file is UTF-8 text",
                e.valid_up_to()
            ))
        })?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        if line_number == 1 {
            match first_line(line) {
                First::Header { dim: d } if d == dim => continue,
                First::Header { dim: d } => {
                    return Err(at(format!(
                        "the header gives vectors of {d} numbers; {dim} were expected"
                    )));
                }
                First::Neither => return Err(at(not_vectors(line))),
                First::Vector { .. } => {}
            }
        }
        // the quick look that most lines of a big file get: a word without spaces that the
        // vocabulary does not hold, and `dim` fields of a number's characters after it
        if let Some((word, rest)) = line.split_once(' ')
            && vocab.index(word).is_none()
            && count_fields(rest) == dim
            && rest.bytes().all(|b| b == b' ' || is_number_byte(b))
        {
            found.words += 1;
            continue;
        }
        let fields: Vec<&str> = line.split(' ').filter(|f| !f.is_empty()).collect();
        let numbers = fields
            .iter()
            .rev()
            .take_while(|f| looks_like_number(f))
            .count()
            .min(fields.len().saturating_sub(1));
        if numbers != dim {
            let first_bad = fields.len() - numbers - 1;
            return Err(at(
                if numbers < dim && first_bad > 0 && fields.len() > dim {
                    format!(
                        "{:?} is not a number (a vector has {dim} numbers after its word)",
                        fields[first_bad]
                    )
                } else {
                    format!("{numbers} numbers after the word, where the vectors have {dim}")
                },
            ));
        }
        found.words += 1;
        let word = fields[..fields.len() - dim].join(" ");
        if let Some(id) = vocab.index(&word)
            && Some(id) != vocab.unk()
            && !seen[id as usize]
        {
            seen[id as usize] = true;
            let vector = fields[fields.len() - dim..]
                .iter()
                .map(|f| {
                    f.parse::<f32>().map_err(|_| {
                        at(format!(
                            "{f:?} is not a number (a vector has {dim} numbers after its word)"
                        ))
                    })
                })
                .collect::<Result<Vec<f32>>>()?;
            if let Some(x) = vector.iter().find(|x| !x.is_finite()) {
                return Err(at(format!(
                    "{x} in the vector of {word:?}: not a finite number"
                )));
            }
            found.rows.push((id, vector));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokens;

    fn vocab() -> Vocab {
        Vocab::build(["the food was good"], Tokens::Word, 1, None, None)
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".vec").tempfile().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn a_fasttext_file_gives_the_vocabulary_s_rows_and_its_coverage() {
        let f = file("4 3\nthe 1 2 3\nzebra 0 0 0\ngood -1.5 0.5 2e-1\nthe 9 9 9\n");
        assert_eq!(dimension(f.path()).unwrap(), 3);
        let v = vocab();
        let found = read_for(f.path(), &v, 3).unwrap();
        assert_eq!(found.words, 4);
        let the = v.index("the").unwrap();
        let good = v.index("good").unwrap();
        assert_eq!(
            found.rows,
            [(the, vec![1.0, 2.0, 3.0]), (good, vec![-1.5, 0.5, 0.2])],
            "the first line of a word counts"
        );
        assert_eq!(found.coverage(&v), 0.5, "2 of the, food, was, good");
    }

    #[test]
    fn fields_are_counted_across_runs_of_spaces() {
        assert_eq!(count_fields(""), 0);
        assert_eq!(count_fields("1 2  3 "), 3);
        assert_eq!(count_fields("  -0.5e-3"), 1);
    }

    #[test]
    fn a_glove_file_has_no_header_and_a_word_may_hold_a_space() {
        let f = file("the 1 2\r\nwas good 3 4\n");
        assert_eq!(dimension(f.path()).unwrap(), 2);
        let v = Vocab::from_tokens(vec!["<unk>".into(), "the".into(), "was good".into()]).unwrap();
        let found = read_for(f.path(), &v, 2).unwrap();
        assert_eq!(found.rows, [(1, vec![1.0, 2.0]), (2, vec![3.0, 4.0])]);
    }

    #[test]
    fn a_wrong_dimension_or_a_bad_number_is_an_error_naming_the_line() {
        let name = |f: &tempfile::NamedTempFile| f.path().display().to_string();
        let f = file("2 3\nthe 1 2 3\nfood 1 2\n");
        let err = read_for(f.path(), &vocab(), 3).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} line 3: 2 numbers after the word, where the vectors have 3",
                name(&f)
            )
        );
        let f = file("the 1 x 3\n");
        let err = read_for(f.path(), &vocab(), 3).unwrap_err().to_string();
        assert!(err.contains("line 1: not a file of word vectors"), "{err}");
        let f = file("the 1 2 3\nfood 1 x 3\n");
        let err = read_for(f.path(), &vocab(), 3).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} line 2: \"x\" is not a number (a vector has 3 numbers after its word)",
                name(&f)
            )
        );
        // a word the vocabulary does not hold is checked as well
        for (text, says) in [
            (
                "zebra 1 2\n",
                "line 1: 2 numbers after the word, where the vectors have 3",
            ),
            (
                "the 1 2 3\nzebra 1 two 3\n",
                "line 2: \"two\" is not a number (a vector has 3 numbers after its word)",
            ),
            (
                "the 1 2 3\nzebra 1 2 3 4\n",
                "line 2: 4 numbers after the word, where the vectors have 3",
            ),
        ] {
            let f = file(text);
            let err = read_for(f.path(), &vocab(), 3).unwrap_err().to_string();
            assert!(err.ends_with(says), "{err}");
        }
        let f = file("10 300\nthe 1 2 3\n");
        let err = read_for(f.path(), &vocab(), 3).unwrap_err().to_string();
        assert!(err.ends_with("line 1: the header gives vectors of 300 numbers; 3 were expected"));
        let f = file("<html>\n");
        let err = dimension(f.path()).unwrap_err().to_string();
        assert!(err.contains("line 1: not a file of word vectors"), "{err}");
    }
}
