//! `rnn generate`: write text with a language model, token by token, as it is drawn.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use rnn::lm::Sampling;
use rnn::model::{Kind, Model};

/// Write text with a language model trained by `rnn lm`: it reads --prime, then draws one
/// token after another, each from the model's prediction of the next, and prints them as they
/// come.
///
/// The same model, prime, settings and seed write the same text.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The language model (.safetensors, written by `rnn lm`).
    #[arg(long)]
    model: PathBuf,
    /// The beginning of the text, printed first; the model reads it and carries on [default:
    /// none: the text starts as after a line break].
    #[arg(long, default_value = "")]
    prime: String,
    /// Tokens to write after the prime (characters, or words for a word model).
    #[arg(long, default_value_t = 500)]
    length: usize,
    /// Below 1 the text is safer and more repetitive, above 1 more surprising; 0 always takes
    /// the likeliest token (greedy, the same text whatever the seed).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Draw only among the K likeliest tokens.
    #[arg(long, value_parser = super::at_least_one)]
    top_k: Option<usize>,
    /// Draw only among the fewest likeliest tokens whose probabilities sum to at least P
    /// (nucleus sampling), in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f32>,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let model = Model::load_as(&args.model, Kind::LanguageModel)?;
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    let generator = model.generate(&args.prime, &sampling)?;
    let mut out = std::io::stdout().lock();
    out.write_all(args.prime.as_bytes())?;
    let join = model.join();
    let mut first = args.prime.is_empty();
    for (token, _) in generator.take(args.length) {
        if !first {
            out.write_all(join.as_bytes())?;
        }
        first = false;
        out.write_all(model.token(token).as_bytes())?;
        out.flush()?;
    }
    writeln!(out)?;
    Ok(())
}
