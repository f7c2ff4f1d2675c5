//! The README's console sessions, run as written (issue 27, item 5): every `$ command` of a
//! ```` ```console ```` block whose output the README quotes is run, in order, in one folder
//! that holds the demo's data, with this build's `rnn` first on `PATH`; and what it prints on
//! standard output must be what the README quotes.
//!
//! What "the same" means, so that a quote stays true on another machine without hiding a
//! change of behaviour:
//! - a line `...` stands for any number of lines, and `...` in a line for any text (the README
//!   elides long outputs);
//! - a number with a decimal point may differ by 0.001 + 2% of the quoted value (another CPU's
//!   kernels round otherwise, and twenty epochs carry it on); a whole number must be equal;
//!   a duration or a rate (`0.12 s`, `55762 tokens/s`) is the machine's and is not compared;
//! - a bar of `█` and `·` must have the quoted length and may have one `█` more or less;
//! - a quoted JSON line may go on over lines indented by two spaces (they are one line);
//! - `rnn serve`'s start-up line must hold the quoted words in their order (the line may gain
//!   settings), and the port is the one the test's server got (`--port 0` is added, and
//!   `localhost:8080` in a `curl` command is that port).
//!
//! Commands that need a file the repository does not have (the Shakespeare model the README
//! trained for 10 minutes) are skipped, with the requests sent to it; the test says which.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rnn");

/// One `$ command` of a console block and the output lines quoted after it.
#[derive(Debug)]
struct Quoted {
    line: usize,
    command: String,
    output: Vec<String>,
}

/// The commands of every console block of `readme`, in order.
fn console_commands(readme: &str) -> Vec<Quoted> {
    let mut commands: Vec<Quoted> = Vec::new();
    let mut inside = false;
    let mut continued = false;
    for (i, line) in readme.lines().enumerate() {
        if !inside {
            inside = line == "```console";
            continue;
        }
        if line == "```" {
            inside = false;
            continue;
        }
        if continued {
            let last = commands.last_mut().unwrap();
            last.command.push(' ');
            last.command += line.trim().trim_end_matches('\\').trim_end();
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            commands.push(Quoted {
                line: i + 1,
                command: command.trim_end_matches('\\').trim_end().to_string(),
                output: Vec::new(),
            });
            continued = line.ends_with('\\');
        } else if let Some(last) = commands.last_mut() {
            // a JSON line quoted over several lines is one line
            let json_goes_on =
                line.starts_with("  ") && last.output.last().is_some_and(|l| l.starts_with('{'));
            if json_goes_on {
                *last.output.last_mut().unwrap() += line.trim_start();
            } else {
                last.output.push(line.to_string());
            }
        }
    }
    for c in &mut commands {
        while c.output.last().is_some_and(|l| l.trim().is_empty()) {
            c.output.pop();
        }
    }
    commands
}

/// A piece of a quoted line.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    /// A number as quoted, whether it has a decimal point, and whether it is compared.
    Number(f64, bool, bool),
    /// `...`: any text.
    Any,
    /// A bar: its length in characters and how many are `█`.
    Bar(usize, usize),
}

/// The number at the start of `s` (`-1`, `0.25`, `1.2e-7`), with its length in bytes.
fn number_at(s: &str) -> Option<(f64, usize)> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        digits(&mut i);
    }
    if i + 1 < b.len() && b[i] == b'e' {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        if digits(&mut j) {
            i = j;
        }
    }
    s[..i].parse().ok().map(|x| (x, i))
}

/// Whether the text after a number makes it a duration or a rate, which is not compared.
fn is_timing(after: &str) -> bool {
    let unit = |u: &str| {
        after
            .strip_prefix(u)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()))
    };
    unit(" s") || unit(" ms") || unit(" tokens/s") || unit(" examples/s")
}

/// The pieces of a quoted line.
fn pieces(quoted: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = quoted;
    let starts_number = |s: &str, text: &str| {
        let previous_is_word = text.chars().last().is_some_and(|c| c.is_alphanumeric());
        let minus = s.starts_with('-') && !previous_is_word;
        (s.starts_with(|c: char| c.is_ascii_digit()) || minus) && number_at(s).is_some()
    };
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("...") {
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Any);
            rest = &rest[3..];
        } else if c == '█' || c == '·' {
            let run: String = rest.chars().take_while(|&c| c == '█' || c == '·').collect();
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Bar(run.chars().count(), run.matches('█').count()));
            rest = &rest[run.len()..];
        } else if starts_number(rest, &text) {
            let (x, len) = number_at(rest).unwrap();
            let decimal = rest[..len].contains('.');
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Number(x, decimal, !is_timing(&rest[len..])));
            rest = &rest[len..];
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push(Piece::Text(text));
    out.retain(|p| *p != Piece::Text(String::new()));
    out
}

/// Whether `actual` is what `pieces` quote (see the module's documentation).
fn line_matches(pieces: &[Piece], actual: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return actual.is_empty();
    };
    match first {
        Piece::Text(t) => actual
            .strip_prefix(t.as_str())
            .is_some_and(|after| line_matches(rest, after)),
        Piece::Number(q, decimal, compared) => {
            let Some((a, len)) = number_at(actual) else {
                return false;
            };
            let close = match (compared, decimal) {
                (false, _) => true,
                (true, true) => (a - q).abs() <= 0.001 + 0.02 * q.abs(),
                (true, false) => a == *q,
            };
            close && line_matches(rest, &actual[len..])
        }
        Piece::Any => actual
            .char_indices()
            .map(|(i, _)| i)
            .chain([actual.len()])
            .any(|i| line_matches(rest, &actual[i..])),
        Piece::Bar(len, full) => {
            let run: String = actual
                .chars()
                .take_while(|&c| c == '█' || c == '·')
                .collect();
            run.chars().count() == *len
                && run.matches('█').count().abs_diff(*full) <= 1
                && line_matches(rest, &actual[run.len()..])
        }
    }
}

/// Whether the lines `actual` are what the lines `quoted` quote, `...` lines standing for
/// any number of lines.
fn lines_match(quoted: &[String], actual: &[&str]) -> bool {
    let Some((first, rest)) = quoted.split_first() else {
        return actual.is_empty();
    };
    if first == "..." {
        return (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]));
    }
    actual
        .split_first()
        .is_some_and(|(a, others)| line_matches(&pieces(first), a) && lines_match(rest, others))
}

/// `rnn serve`'s start-up line against the quoted one: the quoted words in their order, the
/// address's port any.
fn start_up_line_matches(quoted: &str, actual: &str) -> bool {
    let bare = |w: &str| {
        w.trim_matches(|c| c == '(' || c == ')' || c == ',')
            .to_string()
    };
    let actual: Vec<String> = actual.split_whitespace().map(bare).collect();
    let mut words = actual.iter().map(String::as_str);
    quoted.split_whitespace().map(bare).all(|q| {
        let port_free = q
            .strip_prefix("http://127.0.0.1:")
            .map(|_| "http://127.0.0.1:");
        words.any(|a| match port_free {
            Some(prefix) => a.starts_with(prefix),
            None => a == q.as_str(),
        })
    })
}

/// A folder for the session: the demo's data, in `data/sample`.
fn session_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("data/sample");
    std::fs::create_dir_all(&sample).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["train.tsv", "test.tsv"] {
        std::fs::copy(root.join("data/sample").join(name), sample.join(name)).unwrap();
    }
    dir
}

/// `PATH` with this build's `rnn` first.
fn path_with_rnn() -> String {
    let folder = PathBuf::from(BIN).parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        folder.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readmes_console_sessions_print_what_the_readme_quotes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let commands = console_commands(&readme);
    let dir = session_folder();
    let path = path_with_rnn();
    let mut server: Option<(Server, u16)> = None;
    let (mut compared, mut skipped) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for quoted in commands.iter().filter(|c| !c.output.is_empty()) {
        let Quoted {
            line,
            command,
            output,
        } = quoted;
        if command.contains("shakespeare.safetensors")
            || (command.starts_with("curl") && command.contains("/shakespeare"))
        {
            skipped.push(format!("README.md:{line}: {command}"));
            continue;
        }
        if let Some(args) = command.strip_prefix("rnn serve ") {
            let mut child = Command::new(BIN)
                .args(["serve"])
                .args(args.split_whitespace())
                .args(["--port", "0"])
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut first = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut first)
                .unwrap();
            let first = first.trim_end();
            let port = first
                .rsplit("http://127.0.0.1:")
                .next()
                .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("README.md:{line}: no port in {first:?}"));
            server = Some((Server(child), port));
            if output.len() != 1 || !start_up_line_matches(&output[0], first) {
                failures.push(format!(
                    "README.md:{line}: $ {command}\nquoted:\n{}\nprinted:\n{first}\n",
                    output.join("\n")
                ));
            }
            compared.push(*line);
            continue;
        }
        let command_run = match &server {
            Some((_, port)) if command.starts_with("curl") => {
                command.replace("localhost:8080", &format!("127.0.0.1:{port}"))
            }
            _ => command.clone(),
        };
        let out = Command::new("sh")
            .args(["-c", &command_run])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let printed: Vec<&str> = stdout.trim_end().lines().collect();
        if !out.status.success() || !lines_match(output, &printed) {
            failures.push(format!(
                "README.md:{line}: $ {command}\nquoted:\n{}\nprinted (status {}):\n{stdout}\n{}",
                output.join("\n"),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        compared.push(*line);
    }
    drop(server);
    assert!(
        failures.is_empty(),
        "{} of {} quoted outputs differ from this build's:\n\n{}",
        failures.len(),
        compared.len(),
        failures.join("\n")
    );
    // the sessions the README quotes: train, eval, predict, explain; serve and five requests
    assert!(compared.len() >= 10, "only {compared:?} compared");
    eprintln!("skipped (a file the repository does not have): {skipped:#?}");
}

#[test]
fn a_quoted_line_matches_within_its_tolerances() {
    let matches = |q: &str, a: &str| line_matches(&pieces(q), a);
    assert!(matches("loss 0.0061 acc 100.0%", "loss 0.0064 acc 100.0%"));
    assert!(!matches("p 0.0000010433833", "p 0.0013454322"));
    assert!(!matches("loss 0.0061 acc 100.0%", "loss 0.0161 acc 100.0%"));
    assert!(!matches("25 examples", "26 examples"));
    assert!(matches(
        "in 0.12 s (55762 tokens/s in",
        "in 3.50 s (1200 tokens/s in"
    ));
    assert!(matches(
        r#"{"token":"food",...},{"a":1}"#,
        r#"{"token":"food","p":0.5},{"a":1}"#
    ));
    assert!(matches("the  ███·  x", "the  ██··  x"));
    assert!(!matches("the  ███·  x", "the  █···  x"));
    assert!(matches("w-1 at -0.5", "w-1 at -0.51"));
    assert!(start_up_line_matches(
        r#"Serving m as "m" (lstm, H = 64) on http://127.0.0.1:8080"#,
        r#"Serving m as "m" (lstm, H = 64, threads 2) on http://127.0.0.1:4711 (max batch 64)"#
    ));
    assert!(!start_up_line_matches(
        r#"Serving m as "m" (lstm, H = 64) on http://127.0.0.1:8080"#,
        r#"Serving m as "m" (gru, H = 64) on http://127.0.0.1:4711"#
    ));
    let quoted: Vec<String> = ["a", "...", "z"].map(String::from).to_vec();
    assert!(lines_match(&quoted, &["a", "b", "c", "z"]));
    assert!(lines_match(&quoted, &["a", "z"]));
    assert!(!lines_match(&quoted, &["a", "b"]));
}
