//! The training loop's guarantees: it stops cleanly on divergence, keeping the last good
//! weights, and rejects settings and examples that cannot work.

use rnn::data::{Dataset, Example};
use rnn::error::Error;
use rnn::rng::Rng;
use rnn::rnn::{Architecture, CellKind, Init, Network};
use rnn::train::{Data, Event, TrainConfig, train};

/// Training and test examples, no validation set.
fn sets<'a>(train: &'a [Example], test: &'a [Example]) -> Data<'a> {
    Data {
        train,
        test,
        ..Data::default()
    }
}

fn network(data: &Dataset) -> Network {
    network_of(Architecture::new(CellKind::Rnn, data.vocab.len(), 8, 2))
}

fn network_of(arch: Architecture) -> Network {
    let mut rng = Rng::new(0);
    Network::new(&arch, Init::LikeRnn, &mut rng).unwrap()
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_weights() {
    let data = Dataset::sample();
    let mut net = network(&data);
    let two_epochs = TrainConfig {
        epochs: 2,
        ..TrainConfig::seed()
    };
    train(&mut net, sets(&data.train, &data.test), &two_epochs, |_| {}).unwrap();
    let good = net.params().to_vec();

    // A learning rate so large that the first updates overflow the weights to infinity.
    let explosive = TrainConfig {
        epochs: 5,
        lr: 1e38,
        ..TrainConfig::seed()
    };
    let mut epochs_reported = 0;
    let err = train(&mut net, sets(&data.train, &data.test), &explosive, |e| {
        if let Event::Epoch { .. } = e {
            epochs_reported += 1
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Diverged {
                epoch: 1,
                last_good: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(epochs_reported, 0);
    let message = err.to_string();
    assert!(
        message.contains("epoch 1") && message.contains("smaller learning rate"),
        "{message}"
    );
    assert_eq!(net.params(), good.as_slice(), "weights not restored");
}

#[test]
fn settings_out_of_range_are_rejected_before_training() {
    let data = Dataset::sample();
    let mut net = network(&data);
    let before = net.params().to_vec();
    for (config, expected) in [
        (
            TrainConfig {
                lr: -0.1,
                ..TrainConfig::seed()
            },
            "learning rate",
        ),
        (
            TrainConfig {
                lr: f32::NAN,
                ..TrainConfig::seed()
            },
            "learning rate",
        ),
        (
            TrainConfig {
                clip: 0.0,
                ..TrainConfig::seed()
            },
            "clipping",
        ),
        (
            TrainConfig {
                batch: 0,
                ..TrainConfig::seed()
            },
            "batch size",
        ),
    ] {
        let err = train(&mut net, sets(&data.train, &[]), &config, |_| {}).unwrap_err();
        assert!(
            matches!(err, Error::Config(_)) && err.to_string().contains(expected),
            "{err}"
        );
    }
    assert_eq!(net.params(), before.as_slice());
}

#[test]
fn examples_outside_the_network_are_rejected() {
    let data = Dataset::sample();
    let mut net = network(&data);
    let bad_token = [Example {
        tokens: vec![999],
        label: 0,
        grams: Default::default(),
    }];
    let err = train(
        &mut net,
        sets(&bad_token, &[]),
        &TrainConfig::seed(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("token 999"), "{err}");
    let bad_label = [Example {
        tokens: vec![0],
        label: 5,
        grams: Default::default(),
    }];
    let err = train(
        &mut net,
        sets(&data.train, &bad_label),
        &TrainConfig::seed(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("label 5"), "{err}");
    // subword n-grams for a network without subword vectors
    let mut grams = rnn::rnn::TokenGrams::default();
    let subwords = rnn::rnn::Subwords {
        min: 2,
        max: 3,
        buckets: 8,
    };
    grams.push(subwords, "good");
    let with_grams = [Example {
        tokens: vec![0],
        label: 0,
        grams,
    }];
    let err = train(
        &mut net,
        sets(&with_grams, &[]),
        &TrainConfig::seed(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("no subword vectors"), "{err}");
}

/// Trains the sample for up to 50 epochs, setting `stop` from the event handler when `when`
/// says; returns the report, the steps run in epoch 4, and the best weights after epoch 3.
fn stopped_run(
    when: impl Fn(&Event<'_>) -> bool + Sync,
) -> (rnn::train::TrainReport, usize, Vec<f32>, Network) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let data = Dataset::sample();
    let config = TrainConfig {
        epochs: 50,
        batch: 4,
        ..TrainConfig::seed()
    };
    let stop = AtomicBool::new(false);
    let mut net = network(&data);
    let mut steps_in_epoch_4 = 0;
    let mut best_after_3 = Vec::new();
    let with_valid = Data {
        train: &data.train,
        valid: &data.test,
        stop: Some(&stop),
        ..Data::default()
    };
    let report = train(&mut net, with_valid, &config, |event| {
        match event {
            Event::Epoch { metrics, state, .. } if metrics.epoch == 3 => {
                best_after_3 = state.best_params.clone();
            }
            Event::Step { epoch: 4, .. } => steps_in_epoch_4 += 1,
            _ => {}
        }
        if when(&event) {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    (report, steps_in_epoch_4, best_after_3, net)
}

#[test]
fn a_stop_set_from_outside_ends_the_run_after_its_batch_and_keeps_the_best_epoch() {
    // set in the first batch of epoch 4: that batch ends the run, and the part of an epoch is
    // not scored
    let (report, steps, best_after_3, net) =
        stopped_run(|e| matches!(e, Event::Step { epoch: 4, .. }));
    assert_eq!(steps, 1);
    assert!(report.interrupted && !report.stopped_early);
    assert_eq!(report.history.len(), 3);
    // the network holds the best of the three complete epochs, not the half-trained fourth
    let best = report.best_epoch.expect("a validation set picks an epoch");
    assert!((1..=3).contains(&best));
    assert_eq!(net.params(), &best_after_3[..]);

    // set at the end of epoch 3: epoch 4 does not start
    let (report, steps, _, _) =
        stopped_run(|e| matches!(e, Event::Epoch { metrics, .. } if metrics.epoch == 3));
    assert_eq!((steps, report.history.len()), (0, 3));
    assert!(report.interrupted);

    // a run that is not stopped says so
    let (report, ..) = stopped_run(|_| false);
    assert!(!report.interrupted && report.history.len() <= 50);
}

#[test]
fn zero_epochs_train_nothing() {
    let data = Dataset::sample();
    let mut net = network(&data);
    let before = net.params().to_vec();
    let config = TrainConfig {
        epochs: 0,
        ..TrainConfig::seed()
    };
    let report = train(&mut net, sets(&data.train, &data.test), &config, |_| {}).unwrap();
    assert!(report.history.is_empty());
    assert_eq!(report.train_tokens, 0);
    assert_eq!(net.params(), before.as_slice());
}

/// The weights of `net` after 3 epochs on the sample in batches of 8.
fn trained_weights(mut net: Network, threads: usize, seed: u64) -> Vec<f32> {
    let data = Dataset::sample();
    let config = TrainConfig {
        epochs: 3,
        batch: 8,
        seed,
        threads,
        ..TrainConfig::seed()
    };
    train(&mut net, sets(&data.train, &data.test), &config, |_| {}).unwrap();
    net.params().to_vec()
}

fn trained(threads: usize, seed: u64) -> Vec<f32> {
    trained_weights(network(&Dataset::sample()), threads, seed)
}

#[test]
fn threads_share_a_batch_without_changing_what_it_computes() {
    // The same seed and thread count give the same weights, bit for bit.
    assert_eq!(trained(2, 9), trained(2, 9));
    // Two threads sum the same gradient in another order: equal up to rounding.
    let (one, two) = (trained(1, 9), trained(2, 9));
    let worst = one
        .iter()
        .zip(&two)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "one and two threads differ by {worst}");
    assert_ne!(
        trained(2, 9),
        trained(2, 10),
        "another seed, another shuffle"
    );
}

/// The weights after 3 epochs of a stacked bidirectional LSTM with the given dropout.
fn trained_with_dropout(dropout: f32, threads: usize, seed: u64) -> Vec<f32> {
    let data = Dataset::sample();
    let arch = Architecture {
        layers: 2,
        bidirectional: true,
        dropout,
        ..Architecture::new(CellKind::Lstm, data.vocab.len(), 8, 2)
    };
    trained_weights(network_of(arch), threads, seed)
}

#[test]
fn dropout_is_drawn_from_the_seed() {
    // the same seed and threads give the same masks, so the same weights, bit for bit
    assert_eq!(
        trained_with_dropout(0.3, 2, 5),
        trained_with_dropout(0.3, 2, 5)
    );
    assert_ne!(
        trained_with_dropout(0.3, 2, 5),
        trained_with_dropout(0.3, 2, 6)
    );
    // and dropping changes what is learnt
    assert_ne!(
        trained_with_dropout(0.3, 2, 5),
        trained_with_dropout(0.0, 2, 5)
    );
}

#[test]
fn nothing_is_dropped_outside_training() {
    let data = Dataset::sample();
    let arch = Architecture {
        layers: 2,
        dropout: 0.5,
        ..Architecture::new(CellKind::Gru, data.vocab.len(), 8, 2)
    };
    let net = network_of(arch);
    let score = rnn::train::evaluate(&net, &data.test);
    assert_eq!(score, rnn::train::evaluate(&net, &data.test));
    let no_dropout = network_of(Architecture {
        dropout: 0.0,
        ..net.arch().clone()
    });
    assert_eq!(
        no_dropout.params(),
        net.params(),
        "the same initial weights"
    );
    assert_eq!(score, rnn::train::evaluate(&no_dropout, &data.test));
}
