//! The demo's promises, through the library: it learns the sample perfectly, and a seed fixes
//! everything.

use rnn::demo::{DemoConfig, train_sample};
use rnn::train::TrainConfig;

#[test]
fn the_default_demo_reaches_100_percent_on_train_and_test() {
    let report = train_sample(&DemoConfig::default(), |_| {}).unwrap();
    assert_eq!(report.history.len(), 1000);
    assert_eq!(report.train.accuracy, 1.0, "train {:?}", report.train);
    assert_eq!(report.test.accuracy, 1.0, "test {:?}", report.test);
    assert!(
        report.train.loss < 0.01 && report.test.loss < 0.05,
        "{report:?}"
    );
    // It starts from chance: the first epoch is far from perfect.
    let first = &report.history[0];
    assert!(
        first.train.accuracy < 0.7 && first.train.loss > 0.6,
        "{first:?}"
    );
}

fn short(seed: u64) -> DemoConfig {
    DemoConfig {
        hidden: 16,
        train: TrainConfig {
            epochs: 20,
            seed,
            ..TrainConfig::seed()
        },
    }
}

#[test]
fn the_same_seed_gives_the_same_history_and_weights() {
    let a = train_sample(&short(3), |_| {}).unwrap();
    let b = train_sample(&short(3), |_| {}).unwrap();
    assert_eq!(a.history, b.history);
    assert_eq!(a.network.params(), b.network.params());
    let c = train_sample(&short(4), |_| {}).unwrap();
    assert_ne!(a.history, c.history);
}
