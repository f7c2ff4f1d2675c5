//! Subword vectors (after fastText's `-minn`/`-maxn`): a word's embedding is its own row plus
//! the mean of the rows of its hashed character n-grams, so that a word the vocabulary lacks
//! still gets a vector of its own, made of the pieces it shares with words seen in training.
//!
//! ```text
//! G(w)  = { bucket(g) : g a substring of "<" w ">" of MIN..=MAX characters }   (a multiset)
//! x_t   = E[w_t] + (1/|G(w_t)|) Σ_{g ∈ G(w_t)} S[g]            (S: B×E, `subwords.weight`)
//! bucket(g) = FNV-1a(g's UTF-8 bytes) mod B                      (32 bits, fastText's hash)
//! ```
//!
//! A word the vocabulary lacks is `<unk>`'s row plus its own n-grams' mean. The brackets mark
//! the word's ends, so that "her" in `<her>` and in `<where>` are different n-grams (`her>` is
//! the end of both). Single characters at the ends (`<`, `>`) are no n-grams of their own.
//!
//! `S` starts at zero, as the wide path's table does: a network draws the same weights with or
//! without subwords and reads the same inputs until the n-grams have learnt, and pretrained
//! word vectors (`--pretrained`) start as they are. fastText instead averages the word's row
//! with its n-grams' (`(E[w] + Σ S[g]) / (1 + |G|)`, all drawn small); on the accuracy suite
//! that form, with every row drawn N(0, 1), scored 4.6 points less on the small set of long
//! documents (manpages: 81.0 against 85.6) and no more anywhere.
//!
//! Backward: `dE[w_t] += dx_t` and `dS[g] += dx_t / |G|` for each n-gram of the token.
//! `S` follows `E` in the parameters, with rows as wide, so that n-gram `g` is the token
//! table's row `V + g`: the sparse gradient, the optimisers and the processes of a
//! distributed run treat it as a token's (see [`super::Gradients`]).

use crate::error::{Error, Result};

/// The longest character n-gram a subword may be.
pub const MAX_SUBWORD: usize = 20;

/// `B` when none is given: 2^16 rows of `E` floats (fastText's default is 2·10^6 rows of 100).
pub const DEFAULT_SUBWORD_BUCKETS: usize = 1 << 16;

/// The name of the n-grams' table, as in PyTorch's state dict.
pub(crate) const WEIGHT: &str = "subwords.weight";

/// The shape of the subword vectors: character n-grams of `min..=max` characters of every
/// word (with its brackets), hashed into `buckets` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subwords {
    pub min: usize,
    pub max: usize,
    pub buckets: usize,
}

/// Checks the n-grams' lengths, `1 ≤ min ≤ max ≤` [`MAX_SUBWORD`], as `--subwords`, Python's
/// `subwords` and a model file give them.
///
/// # Errors
/// What is wrong, in a sentence the caller puts after the setting's name and value.
pub fn check_lengths(min: usize, max: usize) -> std::result::Result<(), String> {
    if 1 <= min && min <= max && max <= MAX_SUBWORD {
        Ok(())
    } else {
        Err(format!(
            "the shortest n-gram must be at least 1 and at most the longest, and the longest at \
             most {MAX_SUBWORD}"
        ))
    }
}

impl Subwords {
    /// Checks the sizes: the lengths (see [`check_lengths`]) and `1 ≤ B < 2^31`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the size out of range.
    pub fn check(self) -> Result<()> {
        check_lengths(self.min, self.max)
            .map_err(|e| Error::Config(format!("subwords {}-{}: {e}", self.min, self.max)))?;
        if self.buckets == 0 || self.buckets as u64 >= 1 << 31 {
            return Err(Error::Config(format!(
                "the number of subword buckets must be from 1 to 2^31 - 1, not {}",
                self.buckets
            )));
        }
        Ok(())
    }

    /// Appends the bucket of every character n-gram of `word` to `out`: by start, then by
    /// length (fastText's order).
    pub fn buckets_of(self, word: &str, out: &mut Vec<u32>) {
        let mut bracketed = String::with_capacity(word.len() + 2);
        bracketed.push('<');
        bracketed.push_str(word);
        bracketed.push('>');
        // the byte offset of every character, and the end
        let bounds: Vec<usize> = bracketed
            .char_indices()
            .map(|(i, _)| i)
            .chain([bracketed.len()])
            .collect();
        let chars = bounds.len() - 1;
        for i in 0..chars {
            for n in self.min..=self.max.min(chars - i) {
                if n == 1 && (i == 0 || i + 1 == chars) {
                    continue;
                }
                let gram = &bracketed.as_bytes()[bounds[i]..bounds[i + n]];
                out.push(fnv1a(gram) % self.buckets as u32);
            }
        }
    }
}

/// `(MIN, MAX)` from `"MIN-MAX"` (or `"N"` for `N-N`), as `--subwords` and the model file
/// give them; `None` for anything else (the sizes are checked by [`Subwords::check`]).
pub fn parse_subwords(s: &str) -> Option<(usize, usize)> {
    let (min, max) = s.split_once('-').unwrap_or((s, s));
    Some((min.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// The 32-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Every token's subword n-gram buckets, for the tokens of one text: token `t`'s are
/// `ids[starts[t]..starts[t + 1]]`. Empty (no `starts`) for a model without subwords.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenGrams {
    starts: Vec<u32>,
    ids: Vec<u32>,
}

impl TokenGrams {
    /// Appends the next token's n-grams: those of `word` under `subwords`.
    pub fn push(&mut self, subwords: Subwords, word: &str) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        subwords.buckets_of(word, &mut self.ids);
        self.starts.push(self.ids.len() as u32);
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Whether it holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every token's n-gram buckets, one token's after another.
    pub fn all(&self) -> &[u32] {
        &self.ids
    }

    /// Token `t`'s n-gram buckets.
    pub fn of(&self, t: usize) -> &[u32] {
        &self.ids[self.starts[t] as usize..self.starts[t + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(word: &str, min: usize, max: usize) -> Vec<String> {
        // the n-grams themselves, by hashing each candidate into a table of one row a string
        let mut out = Vec::new();
        let s = Subwords {
            min,
            max,
            buckets: 1 << 30,
        };
        s.buckets_of(word, &mut out);
        let bracketed: Vec<char> = format!("<{word}>").chars().collect();
        let mut named = Vec::new();
        for i in 0..bracketed.len() {
            for n in 1..=bracketed.len() - i {
                let g: String = bracketed[i..i + n].iter().collect();
                named.push((fnv1a(g.as_bytes()) % (1 << 30), g));
            }
        }
        out.iter()
            .map(|b| named.iter().find(|(h, _)| h == b).unwrap().1.clone())
            .collect()
    }

    #[test]
    fn a_words_ngrams_are_fasttexts() {
        assert_eq!(grams("where", 3, 3), ["<wh", "whe", "her", "ere", "re>"]);
        assert_eq!(
            grams("ab", 1, 4),
            ["<a", "<ab", "<ab>", "a", "ab", "ab>", "b", "b>"],
            "the brackets alone are no n-gram"
        );
        assert_eq!(grams("é", 2, 2), ["<é", "é>"], "characters, not bytes");
        assert!(grams("", 3, 6).is_empty(), "\"<>\" is too short");
    }

    #[test]
    fn a_grams_bucket_is_the_documented_hash() {
        // the Python export computes the same numbers (python/rnn/_torch.py)
        let s = Subwords {
            min: 3,
            max: 3,
            buckets: 1000,
        };
        let mut out = Vec::new();
        s.buckets_of("ab", &mut out);
        assert_eq!(out, [fnv1a(b"<ab") % 1000, fnv1a(b"ab>") % 1000]);
        assert_eq!(fnv1a(b"<ab"), 0x489c_66e4, "pinned for the export's test");
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        let ok = Subwords {
            min: 3,
            max: 6,
            buckets: 10,
        };
        assert!(ok.check().is_ok());
        for bad in [
            Subwords { min: 0, ..ok },
            Subwords { min: 7, ..ok },
            Subwords { max: 21, ..ok },
            Subwords { buckets: 0, ..ok },
            Subwords {
                buckets: 1 << 31,
                ..ok
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
