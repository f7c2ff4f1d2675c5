//! `rnn`: the command line. It parses flags, calls the library, and prints one clear error.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A recurrent neural network for sequence classification, written from scratch.
///
/// Without a command, runs the demo.
#[derive(Parser, Debug)]
#[command(name = "rnn", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    Demo(cmd::demo::DemoArgs),
    Train(Box<cmd::train::TrainArgs>),
    Lm(Box<cmd::lm::LmArgs>),
    Generate(cmd::generate::GenerateArgs),
    Eval(cmd::eval::EvalArgs),
    Predict(cmd::predict::PredictArgs),
    Explain(cmd::explain::ExplainArgs),
    Serve(cmd::serve::ServeArgs),
}

fn main() -> ExitCode {
    // the library's messages name settings as this program's flags
    rnn::error::name_settings_as_flags();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Some(Command::Train(_) | Command::Lm(_) | Command::Demo(_)) | None
    ) {
        remove_temporaries_on_signals();
    }
    let result = match cli.command {
        Some(Command::Demo(args)) => cmd::demo::run(args),
        Some(Command::Train(args)) => cmd::train::run(*args),
        Some(Command::Lm(args)) => cmd::lm::run(*args),
        Some(Command::Generate(args)) => cmd::generate::run(args),
        Some(Command::Eval(args)) => cmd::eval::run(args),
        Some(Command::Predict(args)) => cmd::predict::run(args),
        Some(Command::Explain(args)) => cmd::explain::run(args),
        Some(Command::Serve(args)) => cmd::serve::run(args),
        None => cmd::demo::run(cmd::demo::DemoArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // said, with how to resume, when the run stopped
        Err(e) if e.is::<cmd::Interrupted>() => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP during a training run, asks it to stop after its current
/// batch: it then writes its last complete epoch's files and says how to resume
/// ([`cmd::STOP`]). Otherwise (before the run, or at a second signal) removes the temporary
/// files being written and exits: a run stopped while it saves leaves the model file as it was
/// (the best so far) and no half-written `.tmp-` file. (`rnn serve` handles these signals
/// itself, to finish the requests in flight.)
fn remove_temporaries_on_signals() {
    let installed = ctrlc::set_handler(|| {
        if cmd::stop_the_run() {
            eprintln!("\nStopping after the current batch (interrupt again to quit at once).");
            return;
        }
        rnn::fsutil::remove_temporaries();
        eprintln!("interrupted");
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!(
            "warning: cannot handle interruptions ({e}); a run stopped while it saves may leave a temporary file"
        );
    }
}

/// Whether the error is stdout being closed early (`rnn ... | head`), which is not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
