//! The vocabulary: every token the model knows, by index.
//!
//! **One-hot encoding.** Token `i` of a vocabulary of `V` tokens is the vector of `V` zeros with
//! a 1 at position `i`. The network only ever multiplies it by `Wxh`, and `Wxh · onehot(i)` is
//! column `i` of `Wxh`, so a text is kept as its token indices and the product is a column
//! look-up ([`Vocab::one_hot`] builds the vector itself, to show the idea; nothing else needs it).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::tokens::Tokens;

/// A map from tokens, hashed with [`FxHasher`].
type TokenMap<V> = HashMap<String, V, BuildHasherDefault<FxHasher>>;

/// The Fx hash (Firefox's, used by the Rust compiler): a multiply and a rotate a word. Much
/// faster than the standard library's SipHash on short strings, and good enough here, where
/// no adversary chooses the keys to collide. Looking tokens up is most of the cost of
/// reading text, and building the map most of the cost of loading a large model.
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.write(&[b]);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The mark of an unseen token's key: a model with a wide path (see [`crate::rnn::Ngrams`])
/// encodes a token its vocabulary lacks not as `<unk>` alone but as `UNSEEN | hash(token)`
/// ([`unseen_key`]), which the recurrent network reads as `<unk>` (token 0) and the wide path
/// by its hash, so that a word seen once in training still has n-grams of its own.
pub const UNSEEN: u32 = 1 << 31;

/// The key of a token the vocabulary lacks: [`UNSEEN`] and the low 31 bits of the 32-bit
/// FNV-1a hash of its UTF-8 bytes (fastText's word hash).
pub fn unseen_key(token: &str) -> u32 {
    let hash = token.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    UNSEEN | (hash & !UNSEEN)
}

/// The token the recurrent network reads for `key`: the key itself, or token 0 (`<unk>`) for
/// an [`UNSEEN`] key.
pub fn network_token(key: u32) -> u32 {
    if key & UNSEEN != 0 { 0 } else { key }
}

/// The token that stands for every token the vocabulary does not have.
pub const UNK: &str = "<unk>";

/// Tokens by index and the way back; optionally with [`UNK`] for unknown tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: TokenMap<u32>,
    unk: Option<u32>,
}

/// How often every token of some texts occurs, and where it was first seen: what processes
/// that each read a part of a data set send each other to agree on one vocabulary
/// ([`TokenCounts::merge`], then [`Vocab::from_counts`]), the one a single process reading
/// every part would build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// In the order the tokens were first seen.
    pub entries: Vec<TokenCount>,
}

/// One token of [`TokenCounts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCount {
    pub token: String,
    pub count: usize,
    /// Where it was first seen: its text's row number, and its place in the text (the row
    /// number times 2^32 plus the place), so that parts read by different processes sort into
    /// the order of the whole.
    pub first: u64,
}

impl TokenCounts {
    /// The counts of `texts`, each with its row number (unique, in the data set's order); with
    /// `max_len`, only a text's first `max_len` tokens count.
    pub fn of<'a>(
        texts: impl IntoIterator<Item = (u64, &'a str)>,
        tokens: Tokens,
        max_len: Option<usize>,
    ) -> Self {
        let limit = max_len.unwrap_or(usize::MAX);
        let mut entries: Vec<TokenCount> = Vec::new();
        let mut seen: TokenMap<usize> = TokenMap::default();
        for (row, text) in texts {
            let mut n = 0;
            tokens.for_each(text, |t| {
                n += 1;
                if n > limit {
                    return;
                }
                match seen.get(t) {
                    Some(&i) => entries[i].count += 1,
                    None => {
                        seen.insert(t.to_string(), entries.len());
                        entries.push(TokenCount {
                            token: t.to_string(),
                            count: 1,
                            first: (row << 32) | (n as u64 - 1).min(u32::MAX as u64),
                        });
                    }
                }
            });
        }
        TokenCounts { entries }
    }

    /// The counts of every part together: counts added, each token first seen where any part
    /// first saw it.
    pub fn merge(parts: impl IntoIterator<Item = TokenCounts>) -> Self {
        let mut entries: Vec<TokenCount> = Vec::new();
        let mut seen: TokenMap<usize> = TokenMap::default();
        for part in parts {
            for e in part.entries {
                match seen.get(&e.token) {
                    Some(&i) => {
                        entries[i].count += e.count;
                        entries[i].first = entries[i].first.min(e.first);
                    }
                    None => {
                        seen.insert(e.token.clone(), entries.len());
                        entries.push(e);
                    }
                }
            }
        }
        entries.sort_by_key(|e| e.first);
        TokenCounts { entries }
    }
}

impl Vocab {
    /// Every distinct word of `texts`, numbered in order of first appearance, without
    /// [`UNK`] (the seed's vocabulary: every test word must be known).
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut vocab = Vocab::default();
        for text in texts {
            Tokens::Word.for_each(text, |t| {
                vocab.insert(t);
            });
        }
        vocab
    }

    /// [`UNK`] at index 0, then every token of `texts` seen at least `min_count` times, in
    /// order of first appearance; with `max_vocab`, only that many of them, the most frequent
    /// (the earlier seen among equals). Other tokens are left to [`UNK`]. With `max_len`, only
    /// the first `max_len` tokens of a text count: the model never reads the others.
    pub fn build<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        tokens: Tokens,
        min_count: usize,
        max_len: Option<usize>,
        max_vocab: Option<usize>,
    ) -> Self {
        let rows = texts.into_iter().enumerate().map(|(i, t)| (i as u64, t));
        Vocab::from_counts(
            &TokenCounts::of(rows, tokens, max_len),
            min_count,
            max_vocab,
        )
    }

    /// The vocabulary that [`Vocab::build`] makes of the texts `counts` counted (in the order
    /// they were first seen).
    pub fn from_counts(counts: &TokenCounts, min_count: usize, max_vocab: Option<usize>) -> Self {
        let counts = &counts.entries;
        let mut kept: Vec<bool> = counts.iter().map(|e| e.count >= min_count.max(1)).collect();
        if let Some(limit) = max_vocab {
            let mut ranked: Vec<usize> = (0..counts.len()).filter(|&i| kept[i]).collect();
            // stable: among equal counts the earlier seen stays ahead
            ranked.sort_by_key(|&i| std::cmp::Reverse(counts[i].count));
            for &i in ranked.iter().skip(limit) {
                kept[i] = false;
            }
        }
        let mut vocab = Vocab::default();
        vocab.insert(UNK);
        vocab.unk = Some(0);
        for (entry, keep) in counts.iter().zip(kept) {
            if keep {
                vocab.insert(&entry.token);
            }
        }
        vocab
    }

    /// A vocabulary from its tokens by index (as a model file lists them); [`UNK`], if among
    /// them, takes the unknown tokens.
    ///
    /// # Errors
    /// The first token that appears twice.
    pub fn from_tokens(tokens: Vec<String>) -> Result<Self, String> {
        let mut index = TokenMap::with_capacity_and_hasher(tokens.len(), Default::default());
        for (i, token) in tokens.iter().enumerate() {
            if index.insert(token.clone(), i as u32).is_some() {
                return Err(format!("the token {token:?} appears twice"));
            }
        }
        let unk = index.get(UNK).copied();
        Ok(Vocab { tokens, index, unk })
    }

    /// Adds `token` at the end unless it is already there; returns its index.
    pub fn insert(&mut self, token: &str) -> u32 {
        if let Some(&i) = self.index.get(token) {
            return i;
        }
        let i = self.tokens.len() as u32;
        self.index.insert(token.to_string(), i);
        self.tokens.push(token.to_string());
        i
    }

    /// `V`, the number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The index of `token`, if it is in the vocabulary.
    pub fn index(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The index of [`UNK`], if the vocabulary has it.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// The token with index `i`.
    pub fn token(&self, i: u32) -> &str {
        &self.tokens[i as usize]
    }

    /// All tokens, by index.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The one-hot vector of `token`: `V` zeros with a 1 at the token's index.
    pub fn one_hot(&self, token: &str) -> Option<Vec<f32>> {
        let i = self.index(token)? as usize;
        let mut x = vec![0.0; self.len()];
        x[i] = 1.0;
        Some(x)
    }

    /// The indices of the tokens of `text`, unknown ones as [`UNK`]; without [`UNK`], the first
    /// unknown token is the error.
    pub fn encode_with(&self, tokens: Tokens, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        let mut unknown = None;
        tokens.for_each(text, |t| match self.index(t).or(self.unk) {
            Some(i) => ids.push(i),
            None => {
                unknown.get_or_insert_with(|| t.to_string());
            }
        });
        match unknown {
            Some(t) => Err(t),
            None => Ok(ids),
        }
    }

    /// [`Vocab::encode_with`] for words.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.encode_with(Tokens::Word, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_shards_merge_into_the_whole_sets_vocabulary() {
        let texts = [
            "the cat sat",
            "a dog ran",
            "the dog sat",
            "cat and dog",
            "zebra",
            "the end",
        ];
        for (min_count, max_vocab) in [(1, None), (2, None), (1, Some(4))] {
            let whole = Vocab::build(texts, Tokens::Word, min_count, None, max_vocab);
            for shards in [2, 3, 4] {
                let parts = (0..shards).map(|r| {
                    let mine = texts.iter().enumerate().skip(r).step_by(shards);
                    TokenCounts::of(mine.map(|(i, t)| (i as u64, *t)), Tokens::Word, None)
                });
                // merged in any order
                let parts: Vec<TokenCounts> = parts.rev().collect();
                let merged = TokenCounts::merge(parts);
                assert_eq!(Vocab::from_counts(&merged, min_count, max_vocab), whole);
            }
        }
    }

    #[test]
    fn the_seed_vocabulary_numbers_words_in_order_of_first_appearance() {
        let vocab = Vocab::from_texts(["Not bad", "not GOOD at all"]);
        assert_eq!(vocab.tokens(), ["not", "bad", "good", "at", "all"]);
        assert_eq!(vocab.index("good"), Some(2));
        assert_eq!(vocab.index("great"), None);
        assert_eq!(vocab.unk(), None);
        assert_eq!(vocab.encode("all  not\tgood"), Ok(vec![4, 0, 2]));
        assert_eq!(vocab.encode("not great"), Err("great".to_string()));
    }

    #[test]
    fn a_one_hot_vector_has_a_single_one_at_the_word_index() {
        let vocab = Vocab::from_texts(["a b c"]);
        assert_eq!(vocab.one_hot("b"), Some(vec![0.0, 1.0, 0.0]));
        assert_eq!(vocab.one_hot("d"), None);
    }

    #[test]
    fn a_built_vocabulary_starts_with_unk_and_drops_rare_tokens() {
        let texts = ["b a b", "c b a"];
        let all = Vocab::build(texts, Tokens::Word, 1, None, None);
        assert_eq!(all.tokens(), [UNK, "b", "a", "c"]);
        let first_two = Vocab::build(texts, Tokens::Word, 1, Some(2), None);
        assert_eq!(first_two.tokens(), [UNK, "b", "a", "c"]);
        let first_one = Vocab::build(texts, Tokens::Word, 1, Some(1), None);
        assert_eq!(first_one.tokens(), [UNK, "b", "c"]);
        let common = Vocab::build(texts, Tokens::Word, 2, None, None);
        assert_eq!(common.tokens(), [UNK, "b", "a"]);
        assert_eq!(common.encode("c a zzz"), Ok(vec![0, 2, 0]));
        let chars = Vocab::build(["ab", "ba"], Tokens::Char, 1, None, None);
        assert_eq!(chars.encode_with(Tokens::Char, "abc"), Ok(vec![1, 2, 0]));
        // the two most frequent, in order of first appearance: c (3), b (3); a (2) is dropped
        let texts = ["a b c", "c b c", "b a"];
        let top = Vocab::build(texts, Tokens::Word, 1, None, Some(2));
        assert_eq!(top.tokens(), [UNK, "b", "c"]);
    }

    #[test]
    fn a_listed_vocabulary_finds_unk_and_rejects_duplicates() {
        let vocab = Vocab::from_tokens(vec!["x".into(), UNK.into(), "y".into()]).unwrap();
        assert_eq!(vocab.unk(), Some(1));
        assert_eq!(vocab.encode("y q"), Ok(vec![2, 1]));
        let err = Vocab::from_tokens(vec!["x".into(), "x".into()]).unwrap_err();
        assert!(err.contains("\"x\" appears twice"), "{err}");
    }
}
