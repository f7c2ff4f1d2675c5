//! How a text becomes tokens: words (lowercased, split on white space), words and punctuation
//! (lowercased, punctuation split off), or characters (every Unicode scalar value, white space
//! included). The rule is stored in a model file, so that a model reads new text exactly as it
//! read its training data.

use std::fmt;
use std::str::FromStr;

/// The tokenisation rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tokens {
    /// Lowercase, then split on white space: `"Not BAD!"` is `["not", "bad!"]`.
    #[default]
    Word,
    /// Every Unicode scalar value is a token, as written: `"Hi!"` is `["H", "i", "!"]`.
    Char,
    /// Lowercase; a run of letters, digits and `_` is a token, and so is every other character
    /// but white space, on its own: `"Not BAD!!"` is `["not", "bad", "!", "!"]`, `"don't"` is
    /// `["don", "'", "t"]`. A word then reads the same with or without the punctuation around
    /// it, which real text (reviews, tweets, descriptions) is full of.
    WordPunct,
}

impl Tokens {
    /// Every rule.
    pub const ALL: [Tokens; 3] = [Tokens::Word, Tokens::WordPunct, Tokens::Char];

    /// The name on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Tokens::Word => "word",
            Tokens::WordPunct => "wordpunct",
            Tokens::Char => "char",
        }
    }

    /// Calls `f` with every token of `text`, in order, without allocating for tokens that are
    /// already in their final form.
    pub fn for_each(self, text: &str, mut f: impl FnMut(&str)) {
        match self {
            Tokens::Word => {
                let mut lower = String::new();
                for word in text.split_whitespace() {
                    if word.chars().any(char::is_uppercase) {
                        lower.clear();
                        lower.extend(word.chars().flat_map(char::to_lowercase));
                        f(&lower);
                    } else {
                        f(word);
                    }
                }
            }
            Tokens::WordPunct => {
                let mut lower = String::new();
                // the run of word characters being read: where it starts, whether it has capitals
                let mut run: Option<(usize, bool)> = None;
                for (i, c) in text.char_indices() {
                    if is_word_char(c) || (run.is_some() && is_combining(c)) {
                        let (_, upper) = run.get_or_insert((i, false));
                        *upper |= c.is_uppercase();
                        continue;
                    }
                    if let Some((start, upper)) = run.take() {
                        emit_lowercase(&text[start..i], upper, &mut lower, &mut f);
                    }
                    if !c.is_whitespace() {
                        emit_lowercase(
                            &text[i..i + c.len_utf8()],
                            c.is_uppercase(),
                            &mut lower,
                            &mut f,
                        );
                    }
                }
                if let Some((start, upper)) = run {
                    emit_lowercase(&text[start..], upper, &mut lower, &mut f);
                }
            }
            Tokens::Char => {
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    f(c.encode_utf8(&mut buf));
                }
            }
        }
    }

    /// The tokens of `text`.
    pub fn split(self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each(text, |t| out.push(t.to_string()));
        out
    }
}

/// Whether `c` is part of a word for [`Tokens::WordPunct`]: a letter, a digit or `_`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `c` is a combining mark (an accent, an Indic vowel sign or virama, a Thai tone
/// mark, ...), which belongs to the word it follows. The standard library has no Unicode
/// categories, so this is the blocks where such marks live, less the dandas (`।` `॥`), which
/// are punctuation; the blocks' letters are alphanumeric anyway.
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' // combining diacritical marks
        | '\u{0483}'..='\u{0489}' // Cyrillic
        | '\u{0591}'..='\u{05C7}' // Hebrew points
        | '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}' // Arabic
        | '\u{0900}'..='\u{0963}' | '\u{0966}'..='\u{0DFF}' // Indic scripts
        | '\u{0E00}'..='\u{0EFF}' // Thai, Lao
        | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' // more diacritics
        | '\u{FE00}'..='\u{FE0F}' | '\u{FE20}'..='\u{FE2F}' // variation selectors, half marks
    )
}

/// Calls `f` with `piece` lowercased (into `buf`, when it has capitals).
fn emit_lowercase(piece: &str, upper: bool, buf: &mut String, f: &mut impl FnMut(&str)) {
    if upper {
        buf.clear();
        buf.extend(piece.chars().flat_map(char::to_lowercase));
        f(buf);
    } else {
        f(piece);
    }
}

impl fmt::Display for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tokens {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tokens::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown token rule {s:?} (expected word, wordpunct or char)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_split_on_any_white_space() {
        assert_eq!(
            Tokens::Word.split(" Not\tBAD!\n at  ÄLL "),
            ["not", "bad!", "at", "äll"]
        );
        assert!(Tokens::Word.split(" \t ").is_empty());
    }

    #[test]
    fn words_and_punctuation_are_split_apart_and_lowercased() {
        assert_eq!(
            Tokens::WordPunct.split(" Not BAD!! don't\tÄLL_x, 3.5 :-) "),
            [
                "not", "bad", "!", "!", "don", "'", "t", "äll_x", ",", "3", ".", "5", ":", "-", ")"
            ]
        );
        assert_eq!(
            Tokens::WordPunct.split("नमस्ते दुनिया।"),
            ["नमस्ते", "दुनिया", "।"]
        );
        assert_eq!(
            Tokens::WordPunct.split("cafe\u{301}!"),
            ["cafe\u{301}", "!"]
        );
        assert!(Tokens::WordPunct.split(" \t ").is_empty());
    }

    #[test]
    fn characters_are_unicode_scalars_kept_as_written() {
        assert_eq!(Tokens::Char.split("Hé !"), ["H", "é", " ", "!"]);
        assert_eq!(Tokens::Char.split("👍🏽"), ["👍", "🏽"]);
    }

    #[test]
    fn names_round_trip() {
        for t in Tokens::ALL {
            assert_eq!(t.name().parse::<Tokens>(), Ok(t));
        }
        assert!(
            "bytes"
                .parse::<Tokens>()
                .unwrap_err()
                .contains("word, wordpunct or char")
        );
    }
}
