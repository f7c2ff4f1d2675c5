//! Pinned model files: a fixed list of fully specified commands, and the hash of every file
//! they write. A refactor must not change a byte of them; a change that means to (a new
//! default, a new field) updates the table below and says why in its commit.
//!
//! Every command gives every flag that shapes the model (network, tokens, vocabulary,
//! training, schedule, seed, threads), so that a changed default does not move a hash either.
//! The data is made here from a fixed recipe, not read from files that may be edited.
//!
//! **Two columns of hashes.** Each command runs with the baseline kernels
//! (`RNN_BASELINE_KERNELS`), whose sums are in the same order on every x86-64 CPU: that
//! column is checked on any machine. It runs again with the kernels this CPU picks, and that
//! column is checked where it is pinned for this CPU's instruction set (the vector kernels
//! round differently, so each set has its own hashes).
//!
//! To print the table after a deliberate change: `RNN_PIN_PRINT=1 cargo test --release --test
//! pinned -- --nocapture`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rnn::kernels::{Isa, isa};

/// One pinned command: its name, its arguments (`{dir}` stands for the scratch folder), and
/// the files whose hashes are pinned.
struct Pinned {
    name: &'static str,
    commands: &'static [&'static [&'static str]],
    files: &'static [&'static str],
}

/// The commands, each flag given.
#[rustfmt::skip]
const PINNED: &[Pinned] = &[
    // The seed's setup: the Elman cell on one-hot words, the last state, per-example SGD.
    Pinned {
        name: "seed_elman_sgd",
        commands: &[&[
            "train", "--train", "{dir}/sample_train.tsv", "--test", "{dir}/sample_test.tsv",
            "--model", "{dir}/seed.safetensors", "--valid-split", "0", "--cell", "rnn",
            "--bidirectional", "false", "--layers", "1", "--embed", "0", "--hidden", "16",
            "--pool", "last", "--ngrams", "0", "--dropout", "0", "--tokens", "word", "--min-count", "1",
            "--optimizer", "sgd", "--lr", "0.02", "--batch", "1", "--patience", "0",
            "--schedule", "constant", "--class-weight", "none", "--clip", "1", "--initializer",
            "numpy", "--input-init", "1", "--epochs", "12", "--seed", "3", "--threads", "1",
        ]],
        files: &["seed.safetensors"],
    },
    // Two bidirectional LSTM layers, max pooling, dropout, Adam, a held-out split, the plateau
    // schedule and balanced class weights; batches of 16 rows (the batched kernels).
    Pinned {
        name: "bilstm2_max_adam_split_plateau_balanced",
        commands: &[&[
            "train", "--train", "{dir}/train.tsv", "--model", "{dir}/bilstm.safetensors",
            "--valid-split", "0.2", "--cell", "lstm", "--bidirectional", "true", "--layers", "2",
            "--embed", "16", "--hidden", "12", "--pool", "max", "--ngrams", "0", "--dropout", "0.3", "--tokens",
            "wordpunct", "--min-count", "2", "--optimizer", "adam", "--lr", "0.01", "--batch",
            "16", "--patience", "2", "--schedule", "plateau", "--class-weight", "balanced",
            "--clip", "1", "--initializer", "pytorch", "--input-init", "1", "--epochs", "4",
            "--seed", "7", "--threads", "2",
        ]],
        files: &["bilstm.safetensors"],
    },
    // The wide path beside a BiLSTM: word bigrams hashed into few buckets (so that grams
    // share rows), their own learning rate, sparse rows of the gradient, unseen words' keys.
    Pinned {
        name: "bilstm_wide_bigrams",
        commands: &[&[
            "train", "--train", "{dir}/train.tsv", "--model", "{dir}/wide.safetensors",
            "--valid-split", "0.2", "--cell", "lstm", "--bidirectional", "true", "--layers", "1",
            "--embed", "8", "--hidden", "8", "--pool", "max", "--ngrams", "2", "--buckets",
            "512", "--wide-lr", "0.05", "--dropout", "0.2", "--tokens", "wordpunct",
            "--min-count", "2", "--optimizer", "adam", "--lr", "0.01", "--batch", "16",
            "--patience", "2", "--schedule", "plateau", "--class-weight", "none", "--clip", "1",
            "--initializer", "pytorch", "--input-init", "1", "--epochs", "4", "--seed", "5",
            "--threads", "2",
        ]],
        files: &["wide.safetensors"],
    },
    // A GRU on characters, mean pooling, a validation file and a test file, plain SGD.
    Pinned {
        name: "gru_char_mean_valid_file",
        commands: &[&[
            "train", "--train", "{dir}/train.tsv", "--valid", "{dir}/valid.tsv", "--test",
            "{dir}/test.tsv", "--model", "{dir}/gru.safetensors", "--cell", "gru",
            "--bidirectional", "false", "--layers", "1", "--embed", "8", "--hidden", "10",
            "--pool", "mean", "--ngrams", "0", "--dropout", "0", "--tokens", "char", "--min-count", "1",
            "--max-len", "40", "--optimizer", "sgd", "--lr", "0.1", "--batch", "8", "--patience",
            "0", "--schedule", "constant", "--class-weight", "none", "--clip", "1",
            "--initializer", "pytorch", "--input-init", "1", "--epochs", "3", "--seed", "1",
            "--threads", "2",
        ]],
        files: &["gru.safetensors"],
    },
    // The Elman cell on one-hot words with a capped vocabulary, both directions, the last
    // states, Adam with its default rate, no validation.
    Pinned {
        name: "birnn_onehot_last_max_vocab",
        commands: &[&[
            "train", "--train", "{dir}/train.tsv", "--model", "{dir}/birnn.safetensors",
            "--valid-split", "0", "--cell", "rnn", "--bidirectional", "true", "--layers", "1",
            "--embed", "0", "--hidden", "9", "--pool", "last", "--ngrams", "0", "--dropout", "0.1", "--tokens",
            "word", "--min-count", "1", "--max-vocab", "30", "--optimizer", "adam", "--batch",
            "4", "--patience", "0", "--schedule", "constant", "--class-weight", "none", "--clip",
            "0.5", "--initializer", "pytorch", "--input-init", "0.5", "--epochs", "3", "--seed",
            "5", "--threads", "1",
        ]],
        files: &["birnn.safetensors"],
    },
    // A run stopped after 2 epochs with its checkpoint kept, then resumed to 4, then trained
    // further from the result with --init.
    Pinned {
        name: "resume_then_init",
        commands: &[
            &[
                "train", "--train", "{dir}/train.tsv", "--model", "{dir}/resumed.safetensors",
                "--valid-split", "0.2", "--cell", "lstm", "--bidirectional", "true", "--layers",
                "1", "--embed", "8", "--hidden", "8", "--pool", "max", "--ngrams", "0", "--dropout", "0.2",
                "--tokens", "wordpunct", "--min-count", "1", "--optimizer", "adam", "--lr",
                "0.01", "--batch", "8", "--patience", "5", "--schedule", "plateau",
                "--class-weight", "none", "--clip", "1", "--initializer", "pytorch",
                "--input-init", "1", "--epochs", "2", "--seed", "11", "--threads", "2",
                "--keep-checkpoint",
            ],
            &[
                "train", "--train", "{dir}/train.tsv", "--model", "{dir}/resumed.safetensors",
                "--resume", "{dir}/resumed.safetensors.ckpt", "--epochs", "4", "--threads", "2",
            ],
            &[
                "train", "--train", "{dir}/train.tsv", "--model", "{dir}/init.safetensors",
                "--init", "{dir}/resumed.safetensors", "--valid-split", "0", "--optimizer",
                "sgd", "--lr", "0.05", "--batch", "8", "--patience", "0", "--schedule",
                "constant", "--class-weight", "none", "--clip", "1", "--epochs", "2", "--seed",
                "12", "--threads", "2",
            ],
        ],
        // (the checkpoint itself holds the run's seconds, so it is not pinned)
        files: &["resumed.safetensors", "init.safetensors"],
    },
    // A character language model: two LSTM layers, windows of 12 over 4 streams, Adam, the
    // validation part cut off the end of the text.
    Pinned {
        name: "lm_lstm2_char",
        commands: &[&[
            "lm", "--train", "{dir}/corpus.txt", "--model", "{dir}/lm_lstm.safetensors",
            "--valid-fraction", "0.1", "--cell", "lstm", "--tokens", "char", "--hidden", "16",
            "--layers", "2", "--embed", "0", "--dropout", "0", "--min-count", "1", "--bptt",
            "12", "--batch", "4", "--epochs", "2", "--patience", "0", "--optimizer", "adam",
            "--lr", "0.005", "--schedule", "constant", "--clip", "5", "--initializer",
            "pytorch", "--seed", "2", "--threads", "2",
        ]],
        files: &["lm_lstm.safetensors"],
    },
    // A word language model with an embedding and dropout, a validation file, SGD with the
    // plateau schedule; stopped after one epoch and resumed to three.
    Pinned {
        name: "lm_gru_word_embed_resume",
        commands: &[
            &[
                "lm", "--train", "{dir}/corpus.txt", "--valid", "{dir}/corpus_valid.txt",
                "--model", "{dir}/lm_gru.safetensors", "--cell", "gru", "--tokens", "word",
                "--hidden", "12", "--layers", "1", "--embed", "8", "--dropout", "0.2",
                "--min-count", "2", "--bptt", "8", "--batch", "2", "--epochs", "1", "--patience",
                "3", "--optimizer", "sgd", "--lr", "0.5", "--schedule", "plateau", "--clip", "1",
                "--initializer", "pytorch", "--seed", "4", "--threads", "1",
                "--keep-checkpoint",
            ],
            &[
                "lm", "--train", "{dir}/corpus.txt", "--valid", "{dir}/corpus_valid.txt",
                "--model", "{dir}/lm_gru.safetensors", "--resume",
                "{dir}/lm_gru.safetensors.ckpt", "--epochs", "3", "--threads", "1",
            ],
        ],
        files: &["lm_gru.safetensors"],
    },
];

/// The pinned hashes: (command, file, with the baseline kernels, with AVX2+FMA, with AVX-512).
/// `0` is not pinned (yet) for that instruction set.
const HASHES: &[(&str, &str, u64, u64, u64)] = &[
    (
        "seed_elman_sgd",
        "seed.safetensors",
        0x125192823f8ab596,
        0x125192823f8ab596,
        0,
    ),
    (
        "bilstm2_max_adam_split_plateau_balanced",
        "bilstm.safetensors",
        0x19422d9cac72111e,
        0x200ca7e7b369c4e4,
        0,
    ),
    (
        "bilstm_wide_bigrams",
        "wide.safetensors",
        0x7e8943aa2f2d5909,
        0xd8d5f78e201ee5c0,
        0,
    ),
    (
        "gru_char_mean_valid_file",
        "gru.safetensors",
        0x2e24abe668bebbb6,
        0x7f720842d4487431,
        0,
    ),
    (
        "birnn_onehot_last_max_vocab",
        "birnn.safetensors",
        0x488a5454b303d3ff,
        0x07d403ec964b6214,
        0,
    ),
    (
        "resume_then_init",
        "resumed.safetensors",
        0x83f7fd180b631663,
        0xf1dee2eb378590e1,
        0,
    ),
    (
        "resume_then_init",
        "init.safetensors",
        0x41877634594bcad0,
        0xcae43226063ac1ea,
        0,
    ),
    (
        "lm_lstm2_char",
        "lm_lstm.safetensors",
        0xba95061efde2d18c,
        0xb8ed8b98639edd25,
        0,
    ),
    (
        "lm_gru_word_embed_resume",
        "lm_gru.safetensors",
        0x5da67f03b7586598,
        0xb1e23b130d2747c8,
        0,
    ),
];

/// FNV-1a, 64 bits: enough to tell two files apart here (not against an adversary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A small deterministic stream (an LCG) for the data below.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

/// `rows` labelled sentences of three topics, with shared filler words and some noise.
fn topic_rows(rng: &mut Lcg, rows: usize) -> String {
    const TOPICS: [(&str, [&str; 6]); 3] = [
        (
            "food",
            ["soup", "bread", "tasty", "cheese", "salty", "dinner"],
        ),
        ("sport", ["goal", "match", "team", "score", "coach", "fast"]),
        (
            "music",
            ["song", "guitar", "loud", "band", "melody", "drum"],
        ),
    ];
    const FILLER: [&str; 8] = ["the", "was", "a", "very", "and", "it", "not", "we"];
    let mut out = String::from("text\tlabel\n");
    for _ in 0..rows {
        let (label, words) = TOPICS[rng.below(3)];
        let len = 3 + rng.below(9);
        let sentence: Vec<&str> = (0..len)
            .map(|_| match rng.below(10) {
                0..=4 => rng.pick(&FILLER),
                5 => {
                    let other = rng.below(3);
                    rng.pick(&TOPICS[other].1)
                }
                _ => rng.pick(&words),
            })
            .collect();
        let punct = [".", "!", ",", ""][rng.below(4)];
        out += &format!("{}{punct}\t{label}\n", sentence.join(" "));
    }
    out
}

/// A text for the language models: sentences from a small grammar.
fn corpus(rng: &mut Lcg, sentences: usize) -> String {
    const SUBJECTS: [&str; 5] = ["the cat", "a dog", "my friend", "the old man", "she"];
    const VERBS: [&str; 5] = ["sees", "likes", "walks to", "finds", "reads"];
    const OBJECTS: [&str; 6] = ["the park", "a book", "the river", "bread", "the moon", "it"];
    let mut out = String::new();
    for i in 0..sentences {
        out += &format!(
            "{} {} {}.{}",
            rng.pick(&SUBJECTS),
            rng.pick(&VERBS),
            rng.pick(&OBJECTS),
            if i % 4 == 3 { "\n" } else { " " }
        );
    }
    out
}

/// Writes the data every command reads into `dir`.
fn write_data(dir: &Path) {
    let mut rng = Lcg(20_261_206);
    let files = [
        ("train.tsv", topic_rows(&mut rng, 240)),
        ("valid.tsv", topic_rows(&mut rng, 40)),
        ("test.tsv", topic_rows(&mut rng, 40)),
        ("corpus.txt", corpus(&mut rng, 300)),
        ("corpus_valid.txt", corpus(&mut rng, 40)),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    for (from, to) in [
        ("train.tsv", "sample_train.tsv"),
        ("test.tsv", "sample_test.tsv"),
    ] {
        std::fs::copy(sample.join(from), dir.join(to)).unwrap();
    }
}

/// Runs every command of `pinned` in `dir`, with the baseline kernels or not, and returns the
/// hash of every pinned file.
fn run(pinned: &Pinned, dir: &Path, baseline: bool) -> Vec<u64> {
    for args in pinned.commands {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{dir}", &dir.display().to_string()))
            .collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rnn"));
        command.args(&args).arg("--quiet");
        if baseline {
            command.env("RNN_BASELINE_KERNELS", "1");
        } else {
            command.env_remove("RNN_BASELINE_KERNELS");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}: rnn {}\n{}",
            pinned.name,
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    pinned
        .files
        .iter()
        .map(|file| fnv1a(&std::fs::read(dir.join(file)).unwrap()))
        .collect()
}

#[test]
fn pinned_commands_write_the_pinned_bytes() {
    // (on a CPU without AVX2 the native run is the baseline run)
    let native = (isa() != Isa::Baseline).then(isa);
    let mut found: Vec<(&str, &str, u64, Option<u64>)> = Vec::new();
    for pinned in PINNED {
        let scratch = tempfile::tempdir().unwrap();
        let dir: PathBuf = scratch.path().to_path_buf();
        write_data(&dir);
        let baseline = run(pinned, &dir, true);
        let native_hashes = native.map(|_| run(pinned, &dir, false));
        for (i, file) in pinned.files.iter().enumerate() {
            found.push((
                pinned.name,
                file,
                baseline[i],
                native_hashes.as_ref().map(|h| h[i]),
            ));
        }
    }
    let table: String = found
        .iter()
        .map(|(name, file, base, native)| {
            format!(
                "    ({name:?}, {file:?}, {base:#018x}, {:#018x}),\n",
                native.unwrap_or(0)
            )
        })
        .collect();
    if std::env::var_os("RNN_PIN_PRINT").is_some() {
        println!("{:?}:\n{table}", isa());
    }
    let mut wrong = Vec::new();
    let mut unpinned = 0;
    for (name, file, base, native_hash) in &found {
        let Some(&(_, _, want_base, want_avx2, want_avx512)) =
            HASHES.iter().find(|(n, f, ..)| n == name && f == file)
        else {
            wrong.push(format!("{name} {file}: not in the table"));
            continue;
        };
        if *base != want_base {
            wrong.push(format!(
                "{name} {file}: baseline {base:#018x}, pinned {want_base:#018x}"
            ));
        }
        let want_native = match native {
            Some(Isa::Avx2) => want_avx2,
            Some(_) => want_avx512,
            None => continue,
        };
        match native_hash {
            Some(h) if want_native == 0 => unpinned += usize::from(*h != 0),
            Some(h) if *h != want_native => wrong.push(format!(
                "{name} {file}: {:?} {h:#018x}, pinned {want_native:#018x}",
                isa()
            )),
            _ => {}
        }
    }
    if unpinned > 0 {
        eprintln!(
            "note: {unpinned} files have no hash pinned for {:?}; only the baseline ones were checked",
            isa()
        );
    }
    assert!(
        wrong.is_empty(),
        "model files changed:\n{}\nwhat this build writes:\n{table}",
        wrong.join("\n")
    );
}
