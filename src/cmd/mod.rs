//! The subcommands, one file each, and what they share: flag parsers and output helpers.

pub mod demo;
pub mod eval;
pub mod explain;
pub mod generate;
pub mod lm;
pub mod outputs;
pub mod predict;
pub mod progress;
pub mod serve;
pub mod train;

/// Parses a whole number that must be at least 1 (`--hidden`, `--epochs`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

pub use rnn::train::{cores, max_threads};

/// Parses `--threads`: at least 1, at most [`max_threads`].
pub fn thread_count(s: &str) -> Result<usize, String> {
    let n = at_least_one(s)?;
    let max = max_threads();
    if n > max {
        let cores = cores();
        return Err(format!(
            "{n} threads on a machine with {cores} cores: at most {max} (4 per core, or 16)"
        ));
    }
    Ok(n)
}

/// Parses a positive, finite number (`--lr`, `--clip`).
pub fn positive_number(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err("must be a positive number".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Parses a dropout probability: at least 0 and less than 1 (`--dropout`).
pub fn dropout_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be at least 0 and less than 1".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Prints the summary table: loss and accuracy of each named set.
pub fn write_scores(
    out: &mut impl std::io::Write,
    scores: &[(&str, rnn::metrics::Score)],
) -> std::io::Result<()> {
    writeln!(out, "           loss  accuracy")?;
    for (name, s) in scores {
        writeln!(
            out,
            "  {name:<5} {:>8.4}  {:>8}",
            s.loss,
            percent(s.accuracy)
        )?;
    }
    Ok(())
}

/// A percentage with one decimal, for accuracies given as fractions.
pub fn percent(fraction: f32) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

/// An `f32` as the shortest decimal that reads back as the same `f32` (`0.02`, not the
/// `0.019999999552965164` that widening it to `f64` would print).
pub fn json_number(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}
