//! The README's "From Rust" block, as the README quotes it (`tests/docs.rs` checks that it
//! does, word for word): `cargo run --release --example readme` runs it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // README:begin
    use rnn::data::files::{ReadOptions, read_rows};
    use rnn::model::Model;
    use rnn::recipe::{self, Recipe};

    let rows = read_rows("data/sample/train.tsv".as_ref(), &ReadOptions::default())?;
    let recipe = Recipe {
        epochs: 30,
        ..Recipe::default()
    };
    let (model, report) = recipe::prepare(rows, None, &recipe)?.train(|_event| {})?;
    println!("trained for {} epochs", report.history.len());
    model.save("sample.safetensors".as_ref())?;
    let loaded = Model::load("sample.safetensors".as_ref())?;
    let prediction = &loaded.predict(&["the food was not bad"])?[0];
    println!(
        "{} ({:.3})",
        loaded.labels()[prediction.label],
        prediction.probs[prediction.label]
    );
    // README:end
    Ok(())
}
