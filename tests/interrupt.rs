//! Ctrl-C in a training run (issue 27, item 2): it said only "interrupted". The run now stops
//! after its current batch, writes the metrics of its complete epochs, keeps a checkpoint of
//! the last one, names both, and prints the command that resumes it: this process's command
//! line with `--resume`. The tests send SIGINT to the binary once its first epoch is logged,
//! then run the command it printed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rnn");

/// Runs the binary with `args` in `dir`, sends it SIGINT once it has logged its first epoch,
/// and returns its output (the lines read before the signal included).
fn interrupted_after_the_first_epoch(args: &[&str], dir: &Path) -> Output {
    common::interrupted_at(args, dir, |line| line.starts_with("epoch "))
}

/// The epoch the run said it stopped after, and the command it printed to go on.
fn where_it_stopped(stderr: &str) -> (usize, String) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Interrupted after epoch "))
        .unwrap_or_else(|| panic!("no interruption line: {stderr}"));
    let epoch = line["Interrupted after epoch ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut lines = stderr
        .lines()
        .skip_while(|l| *l != "To go on with the run:");
    assert!(lines.next().is_some(), "no resume command: {stderr}");
    let command = lines.next().expect("the command").trim().to_string();
    (epoch, command)
}

/// The command's words (it quotes nothing here: the paths are plain).
fn words(command: &str) -> Vec<String> {
    assert!(!command.contains('\''), "{command}");
    command.split(' ').map(str::to_string).collect()
}

/// `args` with the value of `--epochs` set to `epochs`.
fn with_epochs(args: &[String], epochs: usize) -> Vec<String> {
    let mut args = args.to_vec();
    let at = args.iter().position(|a| a == "--epochs").unwrap();
    args[at + 1] = epochs.to_string();
    args
}

fn run(args: &[String], dir: &Path) -> Output {
    let out = Command::new(&args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A labelled set large enough that an epoch takes a while (about 0.1 s): 4,000 texts of 12
/// words drawn from 300, by a fixed stream.
fn write_data(path: &Path) {
    let mut x: u64 = 1;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut data = String::from("text\tlabel\n");
    for _ in 0..4000 {
        let words: Vec<usize> = (0..12).map(|_| next() % 300).collect();
        let text: Vec<String> = words.iter().map(|w| format!("w{w}")).collect();
        let label = ["a", "b"][(words[0] + words[1]) % 2];
        data += &format!("{}\t{label}\n", text.join(" "));
    }
    std::fs::write(path, data).unwrap();
}

/// The data rows of a metrics CSV file: its epoch column.
fn epochs_in(csv: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn an_interrupted_train_run_names_its_checkpoint_and_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.tsv"));
    let args = [
        "train",
        "--train",
        "data.tsv",
        "--model",
        "runs/m.safetensors",
        "--metrics",
        "runs/m.csv",
        "--epochs",
        "20",
        "--cell",
        "gru",
        "--hidden",
        "8",
        "--patience",
        "0",
        "--threads",
        "1",
    ];
    let out = interrupted_after_the_first_epoch(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let (epoch, command) = where_it_stopped(&stderr);
    assert!((1..20).contains(&epoch), "{stderr}");
    // the same command line, less the flags the checkpoint settles, with --resume
    let expected = format!(
        "{BIN} train --train data.tsv --model runs/m.safetensors --metrics runs/m.csv --epochs \
         20 --threads 1 --resume runs/m.safetensors.ckpt"
    );
    assert_eq!(command, expected);
    assert!(
        stderr.contains(&format!(
            "and runs/m.safetensors.ckpt the run after epoch {epoch}."
        )),
        "{stderr}"
    );
    // the metrics of every complete epoch were written
    let csv = dir.path().join("runs/m.csv");
    assert_eq!(epochs_in(&csv), (1..=epoch).collect::<Vec<_>>());
    // the printed command goes on from the checkpoint (here, to two epochs more) and ends in
    // the model file of a run that was never interrupted
    let resume = with_epochs(&words(&command), epoch + 2);
    let resumed = run(&resume, dir.path());
    assert_eq!(epochs_in(&csv), (1..=epoch + 2).collect::<Vec<_>>());
    // the summary tells this process's epochs from the run's (issue 27, item 6)
    let summary = String::from_utf8_lossy(&resumed.stdout);
    let said = format!(
        "Trained epochs {} to {} (2 epochs) in ",
        epoch + 1,
        epoch + 2
    );
    assert!(summary.contains(&said), "{summary}");
    let said = format!(
        "s, resuming the run after epoch {epoch}; the run has trained {} epochs in all, ",
        epoch + 2
    );
    assert!(summary.contains(&said), "{summary}");
    let whole = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("data.tsv"), whole.path().join("data.tsv")).unwrap();
    let mut uninterrupted: Vec<String> = [BIN].iter().chain(&args).map(|a| a.to_string()).collect();
    uninterrupted = with_epochs(&uninterrupted, epoch + 2);
    run(&uninterrupted, whole.path());
    assert!(
        std::fs::read(dir.path().join("runs/m.safetensors")).unwrap()
            == std::fs::read(whole.path().join("runs/m.safetensors")).unwrap(),
        "the resumed run's model differs from the uninterrupted run's"
    );
}

#[test]
fn an_interrupted_lm_run_names_its_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let text = "the cat sat on the mat. a dog ran. ".repeat(4000);
    std::fs::write(dir.path().join("corpus.txt"), text).unwrap();
    let args = [
        "lm",
        "--train",
        "corpus.txt",
        "--model",
        "lm.safetensors",
        "--metrics",
        "lm.csv",
        "--epochs",
        "30",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--threads",
        "1",
    ];
    let out = interrupted_after_the_first_epoch(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let (epoch, command) = where_it_stopped(&stderr);
    assert!((1..30).contains(&epoch), "{stderr}");
    let expected = format!(
        "{BIN} lm --train corpus.txt --model lm.safetensors --metrics lm.csv --epochs 30 \
         --threads 1 --resume lm.safetensors.ckpt"
    );
    assert_eq!(command, expected);
    // a language model's interrupted epoch counts, as one cut short by --max-seconds does
    assert_eq!(
        epochs_in(&dir.path().join("lm.csv")),
        (1..=epoch).collect::<Vec<_>>()
    );
    let resume = with_epochs(&words(&command), epoch + 1);
    let out = run(&resume, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Saved the model to lm.safetensors"),
        "{stdout}"
    );
    let said = format!("Trained epoch {} (1 epoch) in ", epoch + 1);
    assert!(stdout.contains(&said), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "resuming the run after epoch {epoch}; the run has trained"
        )),
        "{stdout}"
    );
    assert_eq!(
        epochs_in(&dir.path().join("lm.csv")),
        (1..=epoch + 1).collect::<Vec<_>>()
    );
}

#[test]
fn a_run_interrupted_in_its_first_epoch_says_there_is_nothing_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.tsv"));
    // SIGINT as soon as the banner is out: the first epoch (of a large network) has not ended
    let mut child = Command::new(BIN)
        .args([
            "train",
            "--train",
            "data.tsv",
            "--model",
            "m.safetensors",
            "--hidden",
            "256",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("Training the network"), "{banner}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(
            "Interrupted before the end of the first epoch: there is nothing to resume, and \
             m.safetensors holds the model it started from."
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("m.safetensors.ckpt").exists());
    assert!(dir.path().join("m.safetensors").exists());
}
