//! The built-in sample: short reviews, each a key-value pair `sentence -> class`.
//!
//! The sentences are written so that a model has to read them in order: negation flips a word
//! (`not good`, `not at all bad`), `very` does not, and `X but Y` or `X at first but Y now` mean
//! `Y`. Every sentence has a twin with the opposite label, and many twins have the same words in
//! another order (`it was bad at first but good now` / `it was good at first but bad now`),
//! which no bag of words can tell apart.
//!
//! The test sentences are training constructions told of another subject (`this was bad at
//! first but good now`): every word is known from training, and no test sentence is a
//! training sentence.

/// The two classes, as the labels below spell them.
pub const NEGATIVE: &str = "negative";
/// See [`NEGATIVE`].
pub const POSITIVE: &str = "positive";

/// 50 training sentences, 25 of each class.
pub const TRAIN: &[(&str, &str)] = &[
    ("the food is good", POSITIVE),
    ("the food is bad", NEGATIVE),
    ("it was great", POSITIVE),
    ("it was awful", NEGATIVE),
    ("this is tasty", POSITIVE),
    ("this is cold", NEGATIVE),
    ("it is good today", POSITIVE),
    ("it is bad today", NEGATIVE),
    ("it is very good", POSITIVE),
    ("it is very bad", NEGATIVE),
    ("the food was very tasty", POSITIVE),
    ("the food was very cold", NEGATIVE),
    ("this was very great now", POSITIVE),
    ("this was very awful now", NEGATIVE),
    ("the food is not bad", POSITIVE),
    ("the food is not good", NEGATIVE),
    ("it was not awful", POSITIVE),
    ("it was not great", NEGATIVE),
    ("this is not cold", POSITIVE),
    ("this is not tasty", NEGATIVE),
    ("it is not bad today", POSITIVE),
    ("it is not good today", NEGATIVE),
    ("it is not at all bad", POSITIVE),
    ("it is not at all good", NEGATIVE),
    ("the food was not at all cold", POSITIVE),
    ("the food was not at all tasty", NEGATIVE),
    ("this was not at all awful", POSITIVE),
    ("this was not at all great", NEGATIVE),
    ("it was bad at first but good now", POSITIVE),
    ("it was good at first but bad now", NEGATIVE),
    ("the food was cold at first but tasty now", POSITIVE),
    ("the food was tasty at first but cold now", NEGATIVE),
    ("this was awful at first but great in the end", POSITIVE),
    ("this was great at first but awful in the end", NEGATIVE),
    ("it is cold at first but good in the end", POSITIVE),
    ("it is good at first but cold in the end", NEGATIVE),
    ("the food was bad at first but great today", POSITIVE),
    ("the food was great at first but bad today", NEGATIVE),
    ("this is awful at first but tasty now", POSITIVE),
    ("this is tasty at first but awful now", NEGATIVE),
    ("it is good and tasty", POSITIVE),
    ("it is bad and cold", NEGATIVE),
    ("the food was great and very tasty", POSITIVE),
    ("the food was awful and very cold", NEGATIVE),
    ("it was cold but tasty", POSITIVE),
    ("it was tasty but cold", NEGATIVE),
    ("this is bad but great now", POSITIVE),
    ("this is great but bad now", NEGATIVE),
    ("the food is not bad and not cold", POSITIVE),
    ("the food is not good and not tasty", NEGATIVE),
];

/// 25 test sentences: new sentences from the training words.
pub const TEST: &[(&str, &str)] = &[
    ("the food was great", POSITIVE),
    ("this is bad today", NEGATIVE),
    ("it is tasty", POSITIVE),
    ("the food is very bad", NEGATIVE),
    ("it was very good", POSITIVE),
    ("it was very cold", NEGATIVE),
    ("this was not bad", POSITIVE),
    ("it is not good", NEGATIVE),
    ("the food was not awful", POSITIVE),
    ("the food is not tasty", NEGATIVE),
    ("it is not cold", POSITIVE),
    ("this is not at all good", NEGATIVE),
    ("this is not bad today", POSITIVE),
    ("it was not at all tasty", NEGATIVE),
    ("the food was not at all awful", POSITIVE),
    ("the food was good at first but bad now", NEGATIVE),
    ("this was bad at first but good now", POSITIVE),
    ("this was tasty at first but cold now", NEGATIVE),
    ("it was cold at first but tasty now", POSITIVE),
    ("it was great at first but awful in the end", NEGATIVE),
    ("the food is cold at first but good in the end", POSITIVE),
    ("it was great at first but bad today", NEGATIVE),
    ("this is good and tasty", POSITIVE),
    ("the food is bad and cold", NEGATIVE),
    ("it was great and very tasty", POSITIVE),
];
