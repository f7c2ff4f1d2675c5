//! `rnn serve`, driven as a client drives it: the real binary on a free loopback port, spoken to
//! over raw HTTP/1.1. Every route; the same probabilities as `rnn predict --probs` and the same
//! trace as `rnn explain --json`; every kind of bad request answered with a 4xx and a JSON error
//! while the server keeps serving; 32 concurrent clients; a clean exit on SIGTERM with the
//! request in flight answered; the limits that keep clients from holding the server (answers
//! they never read, slow heads and bodies, idle connections, bodies sent whole over the
//! limit). A language model's `:generate`, whole and streamed, against `rnn generate` and the
//! library. `browser.rs` drives the page in headless Chromium.

#[path = "serve/browser.rs"]
mod browser;
#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rnn::data::sample::{TEST, TRAIN};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The server and a small HTTP client

/// A running `rnn serve`, killed when dropped (unless a test already stopped it).
struct Server {
    child: Child,
    address: SocketAddr,
    /// The start-up line.
    banner: String,
}

impl Server {
    /// Starts `rnn serve --model m.safetensors --name sample --port 0` in `dir` with `extra`
    /// flags, and reads the port from its start-up line.
    fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_model(dir, "m.safetensors", "sample", extra)
    }

    /// Starts `rnn serve --model FILE --name NAME --port 0` in `dir` with `extra` flags.
    fn start_model(dir: &Path, file: &str, name: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rnn"))
            .args(["serve", "--model", file, "--name", name])
            .args(["--port", "0", "--threads", "2"])
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let Some(url) = banner.trim_end().rsplit(' ').next() else {
            panic!("no start-up line");
        };
        let Some(address) = url.strip_prefix("http://").and_then(|a| a.parse().ok()) else {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("start-up line {banner:?}, stderr {err}");
        };
        Server {
            child,
            address,
            banner: banner.trim_end().to_string(),
        }
    }

    fn get(&self, path: &str) -> Reply {
        request(self.address, "GET", path, None)
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        request(self.address, "POST", path, Some(body.as_bytes()))
    }

    fn predict(&self, texts: &[&str]) -> Vec<Value> {
        let reply = self.post(
            "/v1/models/sample:predict",
            &json!({ "instances": texts }).to_string(),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["predictions"].as_array().unwrap().clone()
    }

    /// The server's resident memory in MB (VmRSS of /proc/PID/status).
    fn rss_mb(&self) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"));
        kb / 1024.0
    }

    /// The server's open file descriptors.
    fn open_files(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Sends SIGTERM and waits (10 s at most) for the exit; its status and stderr.
    fn terminate(&mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                let mut stderr = self.child.stderr.take().unwrap();
                stderr.read_to_string(&mut err).unwrap();
                return (status, err);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Header lines, lowercased.
    headers: Vec<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find_map(|h| h.strip_prefix(&format!("{name}: ")))
    }

    /// Checks a 4xx with `{"error": "... needle ..."}`.
    fn is_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let error = self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(needle), "{error:?} lacks {needle:?}");
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
fn request(address: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.map_or(0, <[u8]>::len)
    );
    raw(
        address,
        &[head.as_bytes(), body.unwrap_or_default()].concat(),
    )
}

/// Sends `bytes` as they are and reads the answer.
fn raw(address: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    Reply {
        status,
        headers: lines.map(str::to_lowercase).collect(),
        body: body.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// A model to serve

/// A temporary folder with the sample as `train.tsv` and `test.tsv` and a model trained on it,
/// `m.safetensors`, good enough to give different answers to different texts.
fn model_dir() -> tempfile::TempDir {
    // a plain cell reading one-hot words, whose batched and lone predictions agree to the bit
    model_dir_with(&common::seed_setup_with_cell("rnn"))
}

/// [`model_dir`], trained with `flags` too.
fn model_dir_with(flags: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, rows) in [("train.tsv", TRAIN), ("test.tsv", TEST)] {
        let mut tsv = String::from("text\tlabel\n");
        for (text, label) in rows {
            tsv.push_str(&format!("{text}\t{label}\n"));
        }
        fs::write(dir.path().join(name), tsv).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(["train", "--train", "train.tsv", "--model", "m.safetensors"])
        .args([
            "--epochs", "100", "--hidden", "8", "--lr", "0.05", "--quiet",
        ])
        .args(flags)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Texts to ask about: the sample's test sentences and two with words the model never saw.
fn texts() -> Vec<&'static str> {
    let mut texts: Vec<&str> = TEST.iter().map(|(text, _)| *text).collect();
    texts.extend(["the zorg was blub", "qqq"]);
    texts
}

/// Runs the binary to completion with `input` on standard input.
fn run_rnn(dir: &Path, args: &[&str], input: &str) -> String {
    let out = common::rnn_with_stdin(args, dir, input.as_bytes());
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The largest difference between two `{"label", "probs"}` objects' probabilities, after
/// checking that they have the same label and classes.
fn difference(a: &Value, b: &Value) -> f64 {
    assert_eq!(a["label"], b["label"], "{a} against {b}");
    let (pa, pb) = (
        a["probs"].as_object().unwrap(),
        b["probs"].as_object().unwrap(),
    );
    assert_eq!(pa.keys().collect::<Vec<_>>(), pb.keys().collect::<Vec<_>>());
    pa.iter()
        .map(|(k, x)| (x.as_f64().unwrap() - pb[k].as_f64().unwrap()).abs())
        .fold(0.0, f64::max)
}

/// How far a text's probabilities may move when it is batched with other texts: the matrix
/// products of fewer than 8 rows use the project's own kernels and larger ones the `gemm`
/// crate, which add in another order. Measured: at most 2e-8.
const ROUNDING: f64 = 1e-6;

// ---------------------------------------------------------------------------------------------
// Routes

#[test]
fn every_route_answers_and_the_start_up_line_describes_the_model() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    assert!(
        server.banner.starts_with(
            "Serving m.safetensors as \"sample\" (rnn, H = 8, V = 24, labels negative, \
             positive) on http://127.0.0.1:"
        ),
        "{}",
        server.banner
    );

    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("<textarea id=\"text\""), "the page");
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "the page loads nothing from the network"
    );

    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );

    assert_eq!(
        server.get("/v1/models").json(),
        json!({"models": ["sample"], "kinds": {"sample": "classifier"}})
    );
    let status = server.get("/v1/models/sample").json();
    assert_eq!(
        status,
        json!({
            "name": "sample", "ready": true, "kind": "classifier", "cell": "rnn", "hidden": 8, "layers": 1,
            "bidirectional": false, "embed": null, "pool": "last", "ngrams": null, "buckets": null,
            "vocabulary": 24,
            "labels": ["negative", "positive"], "tokens": "word", "max_len": null,
        })
    );

    let predictions = server.predict(&["the food was good", "the food was not good"]);
    assert_eq!(predictions.len(), 2);
    for p in &predictions {
        let probs = p["probs"].as_object().unwrap();
        assert_eq!(probs.keys().collect::<Vec<_>>(), ["negative", "positive"]);
        let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{p}");
    }

    let explained = server
        .post(
            "/v1/models/sample:explain",
            r#"{"instances": ["the zorg was good", "bad"]}"#,
        )
        .json();
    assert_eq!(explained["predictions"].as_array().unwrap().len(), 2);
    let steps = explained["explanations"][0].as_array().unwrap();
    let tokens: Vec<&str> = steps.iter().map(|s| s["token"].as_str().unwrap()).collect();
    assert_eq!(tokens, ["the", "<unk>", "was", "good"]);
    assert_eq!(explained["explanations"][1].as_array().unwrap().len(), 1);

    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for line in [
        "rnn_http_requests_total{route=\"page\"} 1",
        "rnn_http_requests_total{route=\"healthz\"} 1",
        "rnn_http_requests_total{route=\"models\"} 1",
        "rnn_http_requests_total{route=\"model\"} 1",
        "rnn_http_requests_total{route=\"predict\"} 1",
        "rnn_http_requests_total{route=\"explain\"} 1",
        "rnn_http_request_duration_seconds_count{route=\"predict\"} 1",
        "rnn_batch_texts_sum 4",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} is not in\n{}",
            metrics.body
        );
    }
}

/// The server's predictions for every text of [`texts`] in one request, and its explanations,
/// are what `rnn predict --probs` and `rnn explain --json` print for the model in `dir`.
fn assert_serves_what_the_command_line_says(dir: &Path, server: &Server) {
    let texts = texts();
    // One request with every text is batched as `rnn predict` batches the same lines: equal
    // to the last bit.
    let served = server.predict(&texts);
    let printed = run_rnn(
        dir,
        &["predict", "--model", "m.safetensors", "--probs"],
        &(texts.join("\n") + "\n"),
    );
    let printed: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(served, printed);

    for text in ["the food was not at all awful", "the zorg was blub"] {
        let cli = run_rnn(
            dir,
            &["explain", "--model", "m.safetensors", "--json", text],
            "",
        );
        let cli: Value = serde_json::from_str(&cli).unwrap();
        let served = server
            .post(
                "/v1/models/sample:explain",
                &json!({ "instances": [text] }).to_string(),
            )
            .json();
        let steps = served["explanations"][0].as_array().unwrap();
        assert_eq!(steps.len(), cli["tokens"].as_array().unwrap().len());
        for (t, step) in steps.iter().enumerate() {
            assert_eq!(step["token"], cli["tokens"][t]);
            let probs: Vec<Value> = ["negative", "positive"]
                .iter()
                .map(|l| step["probs"][l].clone())
                .collect();
            assert_eq!(Value::from(probs), cli["probs"][t], "{text}, token {t}");
        }
    }
}

#[test]
fn predictions_and_explanations_are_those_of_the_command_line() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    assert_serves_what_the_command_line_says(dir.path(), &server);
}

#[test]
fn a_stacked_bidirectional_model_serves_what_the_command_line_says() {
    let flags = [
        "--cell",
        "gru",
        "--layers",
        "2",
        "--bidirectional",
        "--pool",
        "mean",
    ];
    let dir = model_dir_with(&flags);
    let server = Server::start(dir.path(), &[]);
    let status = server.get("/v1/models/sample").json();
    assert_eq!(
        (&status["layers"], &status["bidirectional"], &status["pool"]),
        (&json!(2), &json!(true), &json!("mean"))
    );
    assert_serves_what_the_command_line_says(dir.path(), &server);
}

#[test]
fn a_text_gets_the_same_answer_alone_as_batched_with_others() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    let texts = texts();
    let together = server.predict(&texts);
    let mut worst: f64 = 0.0;
    for (text, batched) in texts.iter().zip(&together) {
        let alone = &server.predict(&[text])[0];
        worst = worst.max(difference(alone, batched));
        // In a batch of fewer than 8 texts, the same recurrent kernels as alone, and for these
        // texts the same input projection too: equal to the last bit (see the README's
        // *Batching*: a batch's input projection may take another kernel than a text alone).
        let few = server.predict(&[text, "it was good", "bad"]);
        assert_eq!(&few[0], alone, "{text}");
    }
    assert!(worst <= ROUNDING, "differs by {worst}");
}

// ---------------------------------------------------------------------------------------------
// Bad requests

#[test]
fn every_bad_request_gets_a_4xx_with_a_json_error_and_the_server_keeps_serving() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-body", "1000", "--max-instances", "4"]);
    let predict = "/v1/models/sample:predict";
    server
        .post(predict, "{\"instances\": [")
        .is_error(400, "not valid JSON");
    server.post(predict, "").is_error(400, "not valid JSON");
    server
        .post(predict, "[\"a\"]")
        .is_error(400, "needs \"instances\"");
    server
        .post(predict, r#"{"inputs": ["a"]}"#)
        .is_error(400, "needs \"instances\"");
    server
        .post(predict, r#"{"instances": "a"}"#)
        .is_error(400, "must be a list");
    server
        .post(predict, r#"{"instances": []}"#)
        .is_error(400, "is empty");
    server
        .post(predict, r#"{"instances": ["a", 3]}"#)
        .is_error(400, "instances[1] is not a string but a number");
    server
        .post(predict, r#"{"instances": ["a", null]}"#)
        .is_error(400, "instances[1] is not a string but null");
    server
        .post(predict, r#"{"instances": ["a", ""]}"#)
        .is_error(400, "instances[1] is an empty string");
    server
        .post("/v1/models/sample:explain", r#"{"instances": [""]}"#)
        .is_error(400, "instances[0] is an empty string");
    // Nesting deeper than the JSON parser's recursion limit is an error, not a stack overflow.
    let deep = format!("{{\"instances\": {}{}}}", "[".repeat(400), "]".repeat(400));
    server.post(predict, &deep).is_error(400, "not valid JSON");
    // Invalid UTF-8.
    request(
        server.address,
        "POST",
        predict,
        Some(b"{\"instances\": [\"\xff\"]}"),
    )
    .is_error(400, "not valid JSON");

    server
        .post("/v1/models/other:predict", r#"{"instances": ["a"]}"#)
        .is_error(404, "no model is named \"other\"");
    server
        .get("/v1/models/other")
        .is_error(404, "no model is named");
    server
        .post("/v1/models/sample:classify", r#"{"instances": ["a"]}"#)
        .is_error(404, "unknown verb");
    server.get("/nothing/here").is_error(404, "no such route");

    for (method, path) in [
        ("PUT", predict),
        ("DELETE", predict),
        ("GET", predict),
        ("POST", "/v1/models"),
        ("POST", "/v1/models/sample"),
        ("POST", "/healthz"),
        ("DELETE", "/"),
    ] {
        request(server.address, method, path, Some(b"{}")).is_error(405, "method not allowed");
    }

    // Over --max-body: declared up front, refused before a byte of it is read ...
    let head = format!(
        "POST {predict} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5000000\r\n\r\n"
    );
    raw(server.address, head.as_bytes()).is_error(413, "larger than the server's limit");
    // ... or sent, 1500 bytes of valid JSON.
    let long = json!({ "instances": ["good ".repeat(295)] }).to_string();
    assert!(long.len() > 1000 && long.len() < 2000);
    server
        .post(predict, &long)
        .is_error(413, "larger than the server's limit");
    // ... or chunked, with no length given.
    let chunked = format!(
        "POST {predict} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{long}\r\n0\r\n\r\n",
        long.len()
    );
    raw(server.address, chunked.as_bytes()).is_error(413, "larger than the server's limit");

    server
        .post(predict, r#"{"instances": ["a", "b", "c", "d", "e"]}"#)
        .is_error(413, "5 instances; a request may have at most 4");

    // Still serving, and every error was counted.
    assert_eq!(server.predict(&["a", "b", "c", "good"]).len(), 4);
    let metrics = server.get("/metrics").body;
    for line in [
        "rnn_http_errors_total{route=\"predict\",code=\"400\"} 11",
        "rnn_http_errors_total{route=\"predict\",code=\"413\"} 4",
        "rnn_http_errors_total{route=\"predict\",code=\"405\"} 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Language models

/// A temporary folder with a small character language model, `lm.safetensors`, trained by the
/// library in a second or so on a few repeated sentences: it has learnt enough to write them
/// back at temperature 0, and draws varied text at temperature 1.
fn lm_dir() -> tempfile::TempDir {
    use rnn::data::Tokens;
    use rnn::model::{Model, ModelConfig};
    use rnn::train::TrainConfig;
    use rnn::train::text::{TextConfig, Texts};

    let text = "the cat sat on the mat. the dog sat on the log. ".repeat(8);
    let config = ModelConfig {
        hidden: 24,
        tokens: Tokens::Char,
        bidirectional: false,
        dropout: 0.0,
        embed: None,
        ..ModelConfig::default()
    };
    let mut model = Model::for_text(&text, &config).unwrap();
    let ids = model.encode(&text);
    let training = TrainConfig {
        epochs: 40,
        batch: 4,
        lr: 0.02,
        threads: 1,
        ..TrainConfig::default()
    };
    let texts = Texts {
        train: &ids,
        ..Texts::default()
    };
    let bptt = TextConfig {
        bptt: 16,
        max_seconds: None,
    };
    model
        .train_text(texts, &training, &bptt, None, |_| {})
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(&dir.path().join("lm.safetensors")).unwrap();
    dir
}

/// `rnn serve` with the language model of [`lm_dir`], named `writer`.
fn lm_server(dir: &Path, extra: &[&str]) -> Server {
    Server::start_model(dir, "lm.safetensors", "writer", extra)
}

const GENERATE: &str = "/v1/models/writer:generate";

impl Server {
    /// The answer to a generate request that must succeed.
    fn generate(&self, request: Value) -> Value {
        let reply = self.post(GENERATE, &request.to_string());
        assert_eq!(reply.status, 200, "{request}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json()
    }
}

/// The body of a `Transfer-Encoding: chunked` answer, put back together.
fn dechunk(body: &str) -> String {
    let (mut whole, mut rest) = (String::new(), body);
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hexadecimal chunk size");
        if size == 0 {
            return whole;
        }
        whole.push_str(&after[..size]);
        rest = after[size..]
            .strip_prefix("\r\n")
            .expect("CRLF after a chunk");
    }
}

/// A generate answer's tokens, each with its probability.
fn tokens_of(answer: &Value) -> Vec<(String, f32)> {
    answer["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["token"].as_str().unwrap().into(),
                t["p"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[test]
fn a_language_model_is_served_and_says_what_it_is() {
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    assert!(
        server.banner.starts_with(
            "Serving lm.safetensors as \"writer\" (a language model: lstm, H = 24, a \
             prediction every step, V = 15, char tokens) on http://127.0.0.1:"
        ),
        "{}",
        server.banner
    );
    assert_eq!(
        server.get("/v1/models").json(),
        json!({"models": ["writer"], "kinds": {"writer": "language_model"}})
    );
    assert_eq!(
        server.get("/v1/models/writer").json(),
        json!({
            "name": "writer", "ready": true, "kind": "language_model", "cell": "lstm",
            "hidden": 24, "layers": 1, "embed": null, "vocabulary": 15, "tokens": "char",
            "join": "", "max_generate_tokens": 2000,
            // --max-prime-memory, 64 MiB, over the 4 bytes of a token's id
            "max_prime_tokens": (64 << 20) / 4,
        })
    );
    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"prime\""),
        "the page has the write box"
    );
}

#[test]
fn generated_text_is_that_of_rnn_generate_and_the_same_for_the_same_seed() {
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    // At temperature 2, so that the draws of a model this sure of its sentences vary.
    let request = json!({ "prime": "the ", "length": 60, "seed": 11, "temperature": 2 });
    let answer = server.generate(request.clone());
    assert_eq!(answer["model"], "writer");
    assert_eq!(answer["prime"], "the ");
    let text = answer["text"].as_str().unwrap();
    let tokens = tokens_of(&answer);
    assert_eq!(tokens.len(), 60, "the length asked for");
    assert_eq!(
        tokens.iter().map(|(t, _)| t.as_str()).collect::<String>(),
        text,
        "a character model's text is its tokens one after the other"
    );
    assert!(
        tokens.iter().all(|&(_, p)| p > 0.0 && p <= 1.0),
        "{tokens:?}"
    );
    // The same request, the same text; another seed, another text.
    assert_eq!(server.generate(request.clone()), answer);
    let mut other = request.clone();
    other["seed"] = json!(12);
    let other = server.generate(other);
    assert_ne!(other["text"], answer["text"]);
    // What `rnn generate` prints: the prime, the text, a new line.
    let printed = run_rnn(
        dir.path(),
        &[
            "generate",
            "--model",
            "lm.safetensors",
            "--prime",
            "the ",
            "--length",
            "60",
            "--seed",
            "11",
            "--temperature",
            "2",
        ],
        "",
    );
    assert_eq!(printed, format!("the {text}\n"));
    // Other lengths, none and every default.
    let mut short = request.clone();
    short["length"] = json!(7);
    let short = server.generate(short);
    assert_eq!(
        tokens_of(&short),
        tokens[..7],
        "the start of the same draws"
    );
    let nothing = server.generate(json!({ "prime": "the ", "length": 0 }));
    assert_eq!(
        (&nothing["text"], &nothing["tokens"]),
        (&json!(""), &json!([]))
    );
    assert_eq!(tokens_of(&server.generate(json!({}))).len(), 200);
}

#[test]
fn temperature_0_writes_the_likeliest_token_every_time() {
    use rnn::lm::Sampling;
    use rnn::model::Model;
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    let greedy = |seed: u64| {
        server
            .generate(json!({ "prime": "the dog ", "length": 40, "temperature": 0, "seed": seed }))
    };
    let answer = greedy(1);
    assert_eq!(greedy(2), answer, "no randomness: the seed does not matter");
    // The library's greedy draws, token by token and probability by probability.
    let model = Model::load(&dir.path().join("lm.safetensors")).unwrap();
    let sampling = Sampling {
        temperature: 0.0,
        ..Sampling::default()
    };
    let expected: Vec<(String, f32)> = model
        .generate("the dog ", &sampling)
        .unwrap()
        .take(40)
        .map(|(t, p)| (model.token(t).to_string(), p))
        .collect();
    assert_eq!(tokens_of(&answer), expected);
    // The model has learnt its sentences: greedily, it writes them on.
    let text = answer["text"].as_str().unwrap();
    assert!(text.starts_with("sat on the "), "{text:?}");
}

#[test]
fn a_stream_sends_a_line_a_token_in_order_and_the_same_text_as_a_whole_answer() {
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    for (prime, seed, temperature) in [("the c", 5, 1.0), ("", 9, 0.7), ("the ", 3, 0.0)] {
        let request =
            json!({ "prime": prime, "length": 80, "seed": seed, "temperature": temperature });
        let whole = server.generate(request.clone());
        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let reply = server.post(GENERATE, &streamed.to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        let body = dechunk(&reply.body);
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 81, "a line a token, then the end");
        let (tokens, last) = lines.split_at(80);
        assert_eq!(
            Value::from(tokens.to_vec()),
            whole["tokens"],
            "the same tokens and probabilities, in order"
        );
        let text: String = tokens
            .iter()
            .map(|t| t["token"].as_str().unwrap())
            .collect();
        assert_eq!(text, whole["text"].as_str().unwrap());
        assert_eq!(
            last[0],
            json!({ "done": true, "model": "writer", "prime": prime, "text": text })
        );
    }
}

#[test]
fn concurrent_generations_each_get_their_own_text() {
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    let request = |seed: u64| json!({ "prime": "the ", "length": 50, "seed": seed });
    let expected: Vec<Value> = (0..4).map(|seed| server.generate(request(seed))).collect();
    let address = server.address;
    std::thread::scope(|scope| {
        for client in 0..8 {
            let expected = &expected;
            scope.spawn(move || {
                for r in 0..5 {
                    let seed = (client + r) % 4;
                    let body = request(seed as u64).to_string();
                    let reply = generate_at(address, &body);
                    assert_eq!(reply, expected[seed], "client {client}, seed {seed}");
                }
            });
        }
    });
    let metrics = server.get("/metrics").body;
    for line in [
        "rnn_http_requests_total{route=\"generate\"} 44",
        "rnn_generated_tokens_total 2200",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    assert!(!metrics.contains("rnn_http_errors_total{"), "{metrics}");
}

/// A generate request to the server at `address` that must succeed: its JSON.
fn generate_at(address: SocketAddr, body: &str) -> Value {
    let reply = request(address, "POST", GENERATE, Some(body.as_bytes()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn bad_generate_requests_and_verbs_of_the_other_kind_get_json_errors() {
    let dir = lm_dir();
    let server = lm_server(dir.path(), &["--max-generate-tokens", "100"]);
    let post = |body: Value| server.post(GENERATE, &body.to_string());
    post(json!({ "temperature": -1 })).is_error(
        400,
        "the temperature must be 0 (always the likeliest token) or more, not -1",
    );
    post(json!({ "top_p": 0 })).is_error(400, "top-p must be more than 0 and at most 1, not 0");
    post(json!({ "top_k": 0 })).is_error(400, "top-k must be at least 1");
    post(json!({ "prime": "XYZ€" })).is_error(
        400,
        "the prime \"XYZ€\" has no token the model knows; its vocabulary has 15 tokens",
    );
    post(json!({ "prime": "the ", "length": 101 })).is_error(
        413,
        "\"length\" is 101 tokens; a generate request may ask for at most 100 \
         (--max-generate-tokens)",
    );
    post(json!({ "length": -1 })).is_error(400, "\"length\" must be a whole number from 0 up");
    post(json!({ "length": 2.5 })).is_error(400, "\"length\" must be a whole number from 0 up");
    post(json!({ "prime": ["the"] })).is_error(400, "\"prime\" must be a string, not a list");
    post(json!({ "stream": "yes" })).is_error(400, "\"stream\" must be true or false");
    post(json!({ "temp": 1 })).is_error(400, "unknown field \"temp\"");
    server
        .post(GENERATE, "{\"prime\": ")
        .is_error(400, "not valid JSON");
    server
        .post(GENERATE, "[]")
        .is_error(400, "the body must be an object");
    // A stream refused before its first token is a plain JSON error, not a stream.
    let refused = post(json!({ "temperature": -1, "stream": true }));
    refused.is_error(400, "the temperature must be 0");
    assert_eq!(refused.header("content-type"), Some("application/json"));
    // A classifier's verbs.
    for verb in ["predict", "explain"] {
        server
            .post(&format!("/v1/models/writer:{verb}"), r#"{"instances": ["the cat"]}"#)
            .is_error(
                404,
                &format!("\"writer\" is a language model: it writes text after a beginning and has no :{verb}"),
            );
    }
    server
        .post("/v1/models/writer:classify", "{}")
        .is_error(404, "unknown verb \"classify\": use :generate");
    server
        .post("/v1/models/other:generate", "{}")
        .is_error(404, "no model is named \"other\"");
    // Still writing, and every error was counted.
    assert_eq!(
        tokens_of(&server.generate(json!({ "length": 100 }))).len(),
        100
    );
    let metrics = server.get("/metrics").body;
    for line in [
        "rnn_http_errors_total{route=\"generate\",code=\"400\"} 12",
        "rnn_http_errors_total{route=\"generate\",code=\"404\"} 1",
        "rnn_http_errors_total{route=\"generate\",code=\"413\"} 1",
        "rnn_http_errors_total{route=\"predict\",code=\"404\"} 1",
        "rnn_http_errors_total{route=\"explain\",code=\"404\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }

    // And a classifier asked to write.
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    server
        .post("/v1/models/sample:generate", r#"{"prime": "the"}"#)
        .is_error(
            404,
            "\"sample\" is a classifier: it has no :generate (a language model, trained by \
             `rnn lm`, has); use :predict or :explain",
        );
}

#[test]
fn a_prime_or_an_answer_over_its_memory_is_refused_before_it_is_read() {
    let dir = lm_dir();
    // 20 kB for answers: a 2000-token answer may take more than half of it. 400 bytes to
    // read a prime: 100 tokens of 4 bytes.
    let server = lm_server(
        dir.path(),
        &["--max-answer-memory", "20000", "--max-prime-memory", "400"],
    );
    let prime = "the cat ".repeat(13);
    for stream in [false, true] {
        server
            .post(
                GENERATE,
                &json!({ "length": 2000, "stream": stream }).to_string(),
            )
            .is_error(413, "--max-answer-memory");
        server
            .post(
                GENERATE,
                &json!({ "prime": prime[..101], "stream": stream }).to_string(),
            )
            .is_error(
                413,
                "the prime has 101 tokens; this model may read at most 100 (--max-prime-memory: \
                 it holds 4 bytes for every token of a prime)",
            );
    }
    let answer = server.generate(json!({ "prime": prime[..100], "length": 100 }));
    assert_eq!(tokens_of(&answer).len(), 100);
    assert_eq!(
        server.get("/v1/models/writer").json()["max_prime_tokens"],
        100
    );
}

// ---------------------------------------------------------------------------------------------
// Load and shutdown

#[test]
fn thirty_two_concurrent_clients_get_correct_answers_and_no_errors() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-wait-ms", "5"]);
    let texts = texts();
    let expected = server.predict(&texts);
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 20;
    let address = server.address;
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (texts, expected) = (&texts, &expected);
            scope.spawn(move || {
                for r in 0..REQUESTS {
                    // Single texts, and every fourth request a few, so that requests of
                    // different sizes share batches.
                    let n = if r % 4 == 0 { 3 } else { 1 };
                    let which: Vec<usize> = (0..n)
                        .map(|k| (client * 7 + r * 3 + k) % texts.len())
                        .collect();
                    let body =
                        json!({ "instances": which.iter().map(|&i| texts[i]).collect::<Vec<_>>() });
                    let reply = request(
                        address,
                        "POST",
                        "/v1/models/sample:predict",
                        Some(body.to_string().as_bytes()),
                    );
                    assert_eq!(reply.status, 200, "client {client}: {}", reply.body);
                    let got = reply.json()["predictions"].as_array().unwrap().clone();
                    assert_eq!(got.len(), n);
                    for (&i, p) in which.iter().zip(&got) {
                        assert!(difference(p, &expected[i]) <= ROUNDING, "{}: {p}", texts[i]);
                    }
                }
            });
        }
    });
    // Requests that arrived together were answered by shared forward passes.
    let metrics = server.get("/metrics").body;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in\n{metrics}"))
    };
    let passes = value("rnn_batch_texts_count");
    let texts_sent = value("rnn_batch_texts_sum");
    assert_eq!(
        texts_sent as usize,
        texts.len() + CLIENTS * (REQUESTS + REQUESTS / 2)
    );
    assert!(
        passes < (1 + CLIENTS * REQUESTS) as f64,
        "{passes} forward passes for {} requests: no batching",
        1 + CLIENTS * REQUESTS
    );
    assert_eq!(
        value("rnn_http_requests_total{route=\"predict\"}") as usize,
        1 + CLIENTS * REQUESTS
    );
    assert!(!metrics.contains("rnn_http_errors_total{"), "{metrics}");
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_cleanly() {
    let dir = model_dir();
    let mut server = Server::start(dir.path(), &[]);
    let address = server.address;
    // A client that sends half its request, and the rest only after the signal.
    let body = br#"{"instances": ["the food was good", "the food was bad"]}"#;
    let in_flight = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        let head = format!(
            "POST /v1/models/sample:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body[..20]).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        stream.write_all(&body[20..]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    std::thread::sleep(Duration::from_millis(250));
    let (status, err) = server.terminate();
    let answer = in_flight.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["predictions"].as_array().unwrap().len(), 2);
    assert!(status.success(), "exit {status:?}: {err}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The port is closed.
    assert!(TcpStream::connect(address).is_err());
}

#[test]
fn a_port_in_use_is_one_clear_error() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    let port = server.address.port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(["serve", "--model", "m.safetensors", "--port", &port])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!("error: cannot serve on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Clients that hold the server: each attack is bounded (tens of clients) and the server's
// limits are set short by flags, so that a test takes seconds.

/// The start of a POST to the model with `length` declared and no body yet.
fn post_head(verb: &str, length: usize) -> String {
    format!(
        "POST /v1/models/sample:{verb} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// The status line of the answer waiting on `stream`, read within `within`; `None` if the
/// connection closes or nothing comes. Whatever follows is left unread.
fn status_line(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Whether the server has closed `stream` (an end of file or a reset): waits `within` at most
/// for it. Bytes the server sends are read and ignored.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    while start.elapsed() < within {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A text of `words` words the model knows.
fn long_text(words: usize) -> String {
    "good ".repeat(words).trim_end().to_string()
}

#[test]
fn an_explanation_over_the_limit_is_refused_before_it_is_computed() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-explain-probs", "1000"]);
    let explain = "/v1/models/sample:explain";
    let body = |words: usize| json!({ "instances": [long_text(words)] }).to_string();
    server.post(explain, &body(501)).is_error(
        413,
        "explaining these texts gives 501 tokens × 2 labels = 1002 probabilities; \
         an explain request may ask for at most 1000 (--max-explain-probs)",
    );
    // Over several texts of one request.
    let two = json!({ "instances": [long_text(300), long_text(201)] }).to_string();
    server
        .post(explain, &two)
        .is_error(413, "--max-explain-probs");
    // At the limit, and a predict of the long text, are answered.
    let steps = server.post(explain, &body(500)).json()["explanations"][0]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(steps, 500);
    assert_eq!(server.predict(&[&long_text(501)]).len(), 1);

    // With the default limit, the report's 200,000-word text is refused, not computed.
    let server = Server::start(dir.path(), &[]);
    server
        .post(explain, &body(200_000))
        .is_error(413, "= 400000 probabilities");
}

#[test]
fn clients_that_never_read_their_answers_cannot_take_the_memory() {
    // 40 clients ask for the explanation of a 200,000-word text (about 14 MB of JSON each)
    // and never read it. Unbounded, the server would hold 40 answers, well over 1 GB.
    const CLIENTS: usize = 40;
    const BOUND_MB: f64 = 400.0;
    let dir = model_dir();
    let server = Server::start(
        dir.path(),
        // the explain limit raised so that these answers are computed; the answer memory
        // at its default, 128 MiB; no connection closed for idleness during the test
        &["--max-explain-probs", "1000000", "--idle-timeout", "60"],
    );
    let body = json!({ "instances": [long_text(200_000)] }).to_string();
    let request = [post_head("explain", body.len()).as_bytes(), body.as_bytes()].concat();
    let mut attackers: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = TcpStream::connect(server.address).unwrap();
            stream.write_all(&request).unwrap();
            stream
        })
        .collect();
    let mut peak: f64 = 0.0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        peak = peak.max(server.rss_mb());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("at most {peak:.0} MB resident with {CLIENTS} unread answers");
    assert!(
        peak < BOUND_MB,
        "{peak:.0} MB resident with {CLIENTS} unread answers"
    );
    // Still serving predictions, and healthy, during the attack.
    assert_eq!(server.predict(&["the food was good"]).len(), 1);
    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );

    // Some answers were computed and wait to be read; the others were refused with a
    // sentence that names the limit.
    let mut answered = 0;
    for stream in &mut attackers {
        let line = status_line(stream, Duration::from_secs(10)).expect("an answer");
        if line.starts_with("HTTP/1.1 200") {
            answered += 1;
        } else {
            assert!(line.starts_with("HTTP/1.1 503"), "{line}");
            // the connection stays open: read the error by its length
            let mut rest = [0u8; 2048];
            let n = stream.read(&mut rest).unwrap();
            let rest = String::from_utf8_lossy(&rest[..n]);
            assert!(rest.contains("--max-answer-memory"), "{rest}");
        }
    }
    assert!(
        (1..CLIENTS).contains(&answered),
        "{answered} of {CLIENTS} answered"
    );
    // The answers' memory comes back when their connections close: a large answer fits again.
    drop(attackers);
    std::thread::sleep(Duration::from_millis(300));
    let reply = server.post("/v1/models/sample:explain", &body);
    assert_eq!(
        reply.status,
        200,
        "{}",
        &reply.body[..reply.body.len().min(300)]
    );
}

#[test]
fn slow_request_heads_are_cut_off_while_predictions_go_on() {
    const CLIENTS: usize = 50;
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--header-timeout", "1"]);
    let address = server.address;
    // Each client sends its head a byte every 100 ms, for 6 s if the server lets it.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).unwrap();
                let start = Instant::now();
                stream
                    .write_all(b"POST /v1/models/sample:predict HTTP/1.1\r\n")
                    .unwrap();
                while start.elapsed() < Duration::from_secs(6) {
                    if stream.write_all(b"x").is_err() {
                        return Some(start.elapsed());
                    }
                    if closed_within(&mut stream, Duration::from_millis(100)) {
                        return Some(start.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.predict(&["the food was good"]).len(), 1);
    for client in clients {
        let closed = client
            .join()
            .unwrap()
            .expect("the slow head was not cut off");
        assert!(
            closed > Duration::from_millis(900) && closed < Duration::from_secs(3),
            "closed after {closed:?}"
        );
    }
}

#[test]
fn slow_bodies_get_408_and_do_not_hold_up_predictions() {
    // More slow clients than permits for requests in progress: a body being read holds none.
    const CLIENTS: usize = 32;
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-pending", "8", "--body-timeout", "1"]);
    let address = server.address;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).unwrap();
                stream
                    .write_all(post_head("predict", 1000).as_bytes())
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                // a byte every 100 ms, until the server stops reading
                let trickle = std::thread::spawn(move || {
                    for _ in 0..60 {
                        if writer.write_all(b" ").is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
                let start = Instant::now();
                let line = status_line(&mut stream, Duration::from_secs(5));
                let elapsed = start.elapsed();
                let mut rest = String::new();
                let _ = stream.read_to_string(&mut rest);
                drop(stream);
                let _ = trickle.join();
                (line, elapsed, rest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    // During the attack: predictions answered, and the server says it is healthy.
    for _ in 0..3 {
        assert_eq!(server.predict(&["the food was good"]).len(), 1);
    }
    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    for client in clients {
        let (line, elapsed, rest) = client.join().unwrap();
        let line = line.expect("an answer to the slow body");
        assert!(line.starts_with("HTTP/1.1 408"), "{line}");
        assert!(rest.contains("--body-timeout"), "{rest}");
        assert!(elapsed < Duration::from_secs(3), "408 after {elapsed:?}");
    }
    let metrics = server.get("/metrics").body;
    let line = format!("rnn_http_errors_total{{route=\"predict\",code=\"408\"}} {CLIENTS}");
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in\n{metrics}"
    );
}

#[test]
fn healthz_says_busy_while_no_model_request_can_be_admitted() {
    let dir = model_dir();
    // One request in progress at most; a batch waits up to 3 s for a request on its way.
    let server = Server::start(dir.path(), &["--max-pending", "1", "--max-wait-ms", "3000"]);
    assert_eq!(server.get("/healthz").status, 200);
    // A request whose body is on its way keeps the next batch waiting ...
    let mut on_its_way = TcpStream::connect(server.address).unwrap();
    on_its_way
        .write_all(post_head("predict", 100).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // ... so this one is admitted and holds the only permit for 3 s.
    let address = server.address;
    let admitted = std::thread::spawn(move || {
        let body = json!({ "instances": ["the food was good"] }).to_string();
        request(
            address,
            "POST",
            "/v1/models/sample:predict",
            Some(body.as_bytes()),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let health = server.get("/healthz");
    assert_eq!(health.status, 503);
    assert_eq!(health.header("retry-after"), Some("1"));
    let queue = json!({"queued": 0, "oldest_seconds": 0.0});
    assert_eq!(
        health.json(),
        json!({"status": "busy", "queues": {"predict": queue, "explain": queue}})
    );
    let refused = server.post("/v1/models/sample:predict", r#"{"instances": ["good"]}"#);
    refused.is_error(503, "busy");
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "{:?}",
        refused.headers
    );
    assert_eq!(admitted.join().unwrap().status, 200);
    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    drop(on_its_way);
}

#[test]
fn idle_connections_are_closed_and_cannot_lock_new_clients_out() {
    const LIMIT: usize = 20;
    const IDLE: usize = 60;
    let dir = model_dir();
    let server = Server::start(
        dir.path(),
        &[
            "--max-connections",
            &LIMIT.to_string(),
            "--max-connections-per-peer",
            &LIMIT.to_string(),
            "--idle-timeout",
            "2",
        ],
    );
    let files = server.open_files();
    let start = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(server.address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Never more than the limit open: the connections idle longest made room for the others.
    let open = server.open_files() - files;
    assert!(
        open <= LIMIT,
        "{open} connections open, the limit is {LIMIT}"
    );
    // A new client is served.
    assert_eq!(server.predict(&["the food was good"]).len(), 1);
    // Those still open are closed after --idle-timeout.
    for stream in &mut idle {
        let left = Duration::from_secs(4).saturating_sub(start.elapsed());
        assert!(closed_within(stream, left), "still open after 4 s");
    }
    assert!(start.elapsed() > Duration::from_millis(1900));
    // A keep-alive connection idle after its answer is closed too.
    let mut kept = TcpStream::connect(server.address).unwrap();
    let body = r#"{"instances": ["good"]}"#;
    let head = format!(
        "POST /v1/models/sample:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    kept.write_all(format!("{head}{body}").as_bytes()).unwrap();
    assert!(
        status_line(&mut kept, Duration::from_secs(5))
            .unwrap()
            .contains("200")
    );
    assert!(
        !closed_within(&mut kept, Duration::from_secs(1)),
        "closed too soon"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(3)),
        "kept open"
    );
}

#[test]
fn over_the_connection_limit_with_every_connection_busy_a_client_gets_503() {
    let dir = model_dir();
    let server = Server::start(
        dir.path(),
        &["--max-connections", "3", "--max-connections-per-peer", "3"],
    );
    // Three connections in the middle of a request's head: none is idle.
    let mut busy: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(server.address).unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = raw(server.address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    refused.is_error(503, "too many connections (--max-connections)");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // One finishes its request; then there is room again.
    busy[0]
        .write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    busy[0].read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn an_oversize_body_sent_whole_still_gets_its_413() {
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-body", "1000"]);
    // No Expect: 100-continue: the client sends the whole body before it reads. The server
    // answers 413 at once and reads the rest, so that the client can send it and read the 413.
    let mut stream = TcpStream::connect(server.address).unwrap();
    let body = vec![b' '; 16 << 20];
    stream
        .write_all(post_head("predict", body.len()).as_bytes())
        .unwrap();
    stream
        .write_all(&body)
        .expect("the body is read, not reset");
    let line = status_line(&mut stream, Duration::from_secs(10)).expect("the 413");
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    assert!(rest.contains("--max-body"), "{rest}");
    assert!(rest.to_lowercase().contains("connection: close"), "{rest}");
}

// ---------------------------------------------------------------------------------------------
// Long work and many clients: explanations that would hold the compute, clients that hang up,
// a shutdown under load, refusals under load, and one peer's connections

/// A temporary folder with the sample and `m.safetensors`, the default network (a
/// bidirectional LSTM, H = 64, whose explanations read each prefix again) trained for an epoch.
fn default_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut tsv = String::from("text\tlabel\n");
    for (text, label) in TRAIN {
        tsv.push_str(&format!("{text}\t{label}\n"));
    }
    fs::write(dir.path().join("train.tsv"), tsv).unwrap();
    run_rnn(
        dir.path(),
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "m.safetensors",
            "--epochs",
            "1",
            "--quiet",
        ],
        "",
    );
    dir
}

/// Sends an explain request of a 10,000-token text (about 50 KB) and leaves its answer unread.
fn long_explain(address: SocketAddr) -> TcpStream {
    let body = json!({ "instances": [long_text(10_000)] }).to_string();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(&[post_head("explain", body.len()).as_bytes(), body.as_bytes()].concat())
        .unwrap();
    stream
}

/// A predict request, answered (200) within 2 s.
fn predicted_within_2_s(server: &Server) {
    let start = Instant::now();
    assert_eq!(server.predict(&["the food was good"]).len(), 1);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "a prediction took {took:?}");
}

/// The value of a counter without labels in `/metrics`.
fn counter(server: &Server, name: &str) -> f64 {
    let metrics = server.get("/metrics").body;
    let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
    let line = line.unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn long_explanations_whose_clients_hang_up_neither_stop_predictions_nor_go_on() {
    let dir = default_model_dir();
    // a short time budget, so that explanations queued behind others are soon late
    let server = Server::start(dir.path(), &["--max-request-seconds", "2"]);
    // The report's two 10,000-token explanations, and more queued behind them.
    let explains: Vec<TcpStream> = (0..8).map(|_| long_explain(server.address)).collect();
    // While they are worked on, predictions are answered, and /healthz says the explain queue
    // is late: its oldest request has waited half of its 2 s.
    let start = Instant::now();
    let busy = loop {
        predicted_within_2_s(&server);
        let health = server.get("/healthz");
        if health.status == 503 {
            break health;
        }
        assert_eq!(health.json(), json!({"status": "ok"}));
        assert!(start.elapsed() < Duration::from_secs(4), "never busy");
        std::thread::sleep(Duration::from_millis(50));
    };
    let health = busy.json();
    assert_eq!(health["status"], "busy", "{health}");
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(
        health["queues"]["explain"]["queued"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert!(
        health["queues"]["explain"]["oldest_seconds"]
            .as_f64()
            .unwrap()
            >= 1.0,
        "{health}"
    );
    assert_eq!(health["queues"]["predict"]["queued"], 0, "{health}");
    // The clients hang up: their work stops, and the server is soon healthy again.
    drop(explains);
    predicted_within_2_s(&server);
    let start = Instant::now();
    while server.get("/healthz").status != 200 {
        assert!(start.elapsed() < Duration::from_secs(2), "still busy");
        std::thread::sleep(Duration::from_millis(20));
    }
    predicted_within_2_s(&server);
    assert!(counter(&server, "rnn_abandoned_requests_total") >= 1.0);
}

#[test]
fn an_explanation_over_its_time_gets_503_and_its_work_is_given_up() {
    let dir = default_model_dir();
    let server = Server::start(dir.path(), &["--max-request-seconds", "0.5"]);
    let mut explains: Vec<TcpStream> = (0..6).map(|_| long_explain(server.address)).collect();
    let mut late = 0;
    for stream in &mut explains {
        let line = status_line(stream, Duration::from_secs(10)).expect("an answer");
        if line.starts_with("HTTP/1.1 503") {
            late += 1;
            let mut rest = [0u8; 2048];
            let n = stream.read(&mut rest).unwrap();
            let rest = String::from_utf8_lossy(&rest[..n]).to_lowercase();
            assert!(rest.contains("retry-after: 1"), "{rest}");
            assert!(rest.contains("--max-request-seconds"), "{rest}");
        } else {
            assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        }
    }
    assert!(late >= 1, "none of 6 long explanations was late");
    // The compute threads learn that the late ones are gone, and give up their work: those
    // still queued at least (one being computed may end before its thread looks, which on a
    // loaded machine is a race). Polled for long, as it is not a measure of speed.
    let start = Instant::now();
    while counter(&server, "rnn_abandoned_requests_total") < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "work not given up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_under_load_gives_up_after_shutdown_seconds_and_exits_0() {
    let dir = default_model_dir();
    let mut server = Server::start(dir.path(), &["--shutdown-seconds", "1"]);
    // More explanation than a second: 16 texts of 10,000 tokens, one explain thread.
    let explains: Vec<TcpStream> = (0..16).map(|_| long_explain(server.address)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let (status, err) = server.terminate();
    let took = start.elapsed();
    assert!(status.success(), "exit {status:?}: {err}");
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        err.contains("gave up the requests still in flight after 1 s (--shutdown-seconds)"),
        "{err}"
    );
    drop(explains);
}

#[test]
fn a_hundred_concurrent_1_mb_predictions_each_get_an_answer() {
    const CLIENTS: usize = 100;
    let dir = default_model_dir();
    let server = Server::start(dir.path(), &[]);
    // about 1 MB of words a request, under --max-body (1 MiB)
    let body = json!({ "instances": [long_text(199_000)] }).to_string();
    assert!(
        body.len() > 990_000 && body.len() < 1 << 20,
        "{}",
        body.len()
    );
    let request = [post_head("predict", body.len()).as_bytes(), body.as_bytes()].concat();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (address, request) = (server.address, request.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).unwrap();
                if let Err(e) = stream.write_all(&request) {
                    return format!("not sent: {e}");
                }
                match status_line(&mut stream, Duration::from_secs(120)) {
                    Some(line) => line,
                    None => "no status".to_string(),
                }
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for client in clients {
        *statuses.entry(client.join().unwrap()).or_insert(0) += 1;
    }
    for line in statuses.keys() {
        assert!(
            ["HTTP/1.1 200", "HTTP/1.1 413", "HTTP/1.1 503"]
                .iter()
                .any(|s| line.starts_with(s)),
            "{statuses:?}"
        );
    }
    eprintln!("{statuses:?}");
    predicted_within_2_s(&server);
}

/// A connection to `address` from the loopback address `from` (127.0.0.2, say): another peer.
fn connect_from(from: &str, address: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(address).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

#[test]
fn one_peer_trickling_bodies_holds_its_share_of_the_connections_not_all() {
    // The report's slowloris, scaled down: more connections than the limit, from one address,
    // each sending a body a byte at a time (for 30 s, the body timeout, if let).
    const LIMIT: usize = 20;
    const SLOW: usize = 30;
    let dir = model_dir();
    let server = Server::start(dir.path(), &["--max-connections", &LIMIT.to_string()]);
    let mut slow: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(server.address).unwrap();
        stream
            .write_all(post_head("predict", 1000).as_bytes())
            .unwrap();
        let _ = stream.write_all(b" ");
        std::thread::sleep(Duration::from_millis(10));
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut answer = [0u8; 512];
        match stream.read(&mut answer) {
            Ok(n) if n > 0 => {
                let answer = String::from_utf8_lossy(&answer[..n]);
                assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
                assert!(answer.contains("retry-after: 1"), "{answer}");
                assert!(answer.contains("--max-connections-per-peer"), "{answer}");
                refused += 1;
            }
            _ => slow.push(stream),
        }
    }
    // Half of the connections by default: 10 held, the others refused.
    assert_eq!((slow.len(), refused), (LIMIT / 2, SLOW - LIMIT / 2));
    // Another peer is served while they trickle.
    for _ in 0..3 {
        let mut other = connect_from("127.0.0.2", server.address);
        let body = json!({ "instances": ["the food was good"] }).to_string();
        let head = format!(
            "POST /v1/models/sample:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        other.write_all(format!("{head}{body}").as_bytes()).unwrap();
        let line = status_line(&mut other, Duration::from_secs(5));
        assert_eq!(line.as_deref(), Some("HTTP/1.1 200 OK"));
    }
    for stream in &mut slow {
        let _ = stream.write_all(b" ");
    }
}
