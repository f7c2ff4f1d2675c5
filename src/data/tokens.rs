//! How a text becomes tokens: words (lowercased, split on white space) or characters (every
//! Unicode scalar value, white space included). The rule is stored in a model file, so that a
//! model reads new text exactly as it read its training data.

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
}

impl Tokens {
    /// Every rule.
    pub const ALL: [Tokens; 2] = [Tokens::Word, Tokens::Char];

    /// The name on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Tokens::Word => "word",
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
            .ok_or_else(|| format!("unknown token rule {s:?} (expected word or char)"))
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
                .contains("word or char")
        );
    }
}
