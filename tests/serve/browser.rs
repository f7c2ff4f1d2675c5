//! The page at `/` in a real browser: headless Chromium, driven over the DevTools protocol,
//! loads it, types a sentence, and must show the label the API gives and one token chip per
//! token, `<unk>` included; for a language model, types a beginning, clicks Write, and must
//! show the text the API writes, a shaded span a token with its probability. Screenshots at
//! phone size go to the tests' temporary folder.
//!
//! The test needs a browser, so it is ignored by a plain `cargo test` (whose summary then says
//! `1 ignored`, rather than an `ok` for a test that did not run); `.ci/run` installs Chromium
//! and runs it with `cargo test --test serve -- --ignored`, where a missing browser fails.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::{Server, lm_dir, lm_server, model_dir};

/// The names the browser goes by in Debian and elsewhere.
const BROWSERS: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "chrome"];

/// The first browser binary on `PATH`.
fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| BROWSERS.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless browser, killed when dropped.
struct Browser {
    child: Child,
    /// The browser's DevTools endpoint, `ws://127.0.0.1:PORT/devtools/browser/ID`.
    url: String,
}

impl Browser {
    fn launch(binary: &Path, profile: &Path) -> Browser {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--no-sandbox", // tests may run as root, where the sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=412,860",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the browser starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut url = None;
        for line in stderr.by_ref() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.strip_prefix("DevTools listening on ") {
                url = Some(rest.to_string());
                break;
            }
            seen.push(line);
        }
        let Some(url) = url else {
            let _ = child.kill();
            panic!("the browser gave no DevTools address:\n{}", seen.join("\n"));
        };
        // Keep reading what the browser says, so that it never writes into a closed pipe.
        std::thread::spawn(move || stderr.for_each(drop));
        Browser { child, url }
    }

    /// A DevTools session with a new page.
    fn page(&self) -> Devtools {
        let mut browser = Devtools::connect(&self.url);
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let id = target["targetId"].as_str().expect("a target id");
        let host = self
            .url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap();
        Devtools::connect(&format!("ws://{host}/devtools/page/{id}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DevTools protocol session: commands and their results; events are skipped.
struct Devtools {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Devtools {
    fn connect(url: &str) -> Devtools {
        let (socket, _) = tungstenite::connect(url).expect("DevTools accepts the connection");
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
        }
        Devtools { socket, next_id: 0 }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(message)).unwrap();
        loop {
            let message = self.socket.read().expect("DevTools answers");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let reply: Value = serde_json::from_str(text).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression (JSON-serialisable).
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until `done` accepts its value (20 s at most).
    fn wait_for(&mut self, expression: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let value = self.eval(expression);
            if done(&value) {
                return value;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gave up waiting; last value {value}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Standard base64, for the screenshot.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    out
}

/// The browser binary, or a panic that says what to install.
fn browser_binary() -> PathBuf {
    find_browser().unwrap_or_else(|| {
        panic!(
            "no browser on PATH (looked for {}): install Debian's chromium",
            BROWSERS.join(", ")
        )
    })
}

/// Saves a screenshot of `page` as `name` in the tests' temporary folder.
fn screenshot(page: &mut Devtools, name: &str) {
    let screenshot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_decode(screenshot["data"].as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
}

#[test]
#[ignore = "needs Chromium: cargo test --test serve -- --ignored (.ci/run does)"]
fn the_page_shows_the_label_and_the_tokens_as_a_sentence_is_typed() {
    let binary = browser_binary();
    let dir = model_dir();
    let server = Server::start(dir.path(), &[]);
    let sentence = "the food was zorg not bad";
    let expected = server.predict(&[sentence])[0]["label"].clone();

    let browser = Browser::launch(&binary, &dir.path().join("profile"));
    let mut page = browser.page();
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 412, "height": 860, "deviceScaleFactor": 2, "mobile": true }),
    );
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/", server.address) }),
    );
    // The page has asked the server about the model.
    page.wait_for("document.body && document.body.dataset.state", |v| {
        v == "idle"
    });
    let about = page.eval("document.getElementById('about').textContent");
    assert!(
        about
            .as_str()
            .unwrap()
            .starts_with("1 layer of rnn cells, H = 8, one-hot input, "),
        "{about}"
    );

    page.eval("document.getElementById('text').focus()");
    // Typed as a person types: a word at a time, each one answered as it arrives.
    for (i, word) in sentence.split(' ').enumerate() {
        let text = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        page.call("Input.insertText", json!({ "text": text }));
    }
    let shown = page.wait_for(
        "JSON.stringify({state: document.body.dataset.state, \
           label: document.getElementById('label').textContent, \
           tokens: [...document.querySelectorAll('#tokens .token .text')].map(t => t.textContent), \
           unk: document.querySelectorAll('#tokens .token.unk').length, \
           bars: document.querySelectorAll('#probs .bar-row').length})",
        |v| {
            let v: Value = serde_json::from_str(v.as_str().unwrap_or("{}")).unwrap_or_default();
            v["state"] == "shown" && v["tokens"].as_array().is_some_and(|t| t.len() == 6)
        },
    );
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    assert_eq!(shown["label"], expected, "{shown}");
    assert_eq!(
        shown["tokens"],
        json!(["the", "food", "was", "<unk>", "not", "bad"]),
        "{shown}"
    );
    assert_eq!(shown["unk"], 1, "the unknown token is marked");
    assert_eq!(shown["bars"], 2, "one probability bar a class");
    screenshot(&mut page, "serve-page.png");
}

#[test]
#[ignore = "needs Chromium: cargo test --test serve -- --ignored (.ci/run does)"]
fn the_page_of_a_language_model_writes_on_from_a_beginning_token_by_token() {
    let binary = browser_binary();
    let dir = lm_dir();
    let server = lm_server(dir.path(), &[]);
    let request = json!({ "prime": "the dog ", "length": 120, "temperature": 0.8, "seed": 4 });
    let expected = server.generate(request);

    let browser = Browser::launch(&binary, &dir.path().join("profile"));
    let mut page = browser.page();
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 412, "height": 860, "deviceScaleFactor": 2, "mobile": true }),
    );
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/", server.address) }),
    );
    page.wait_for("document.body && document.body.dataset.state", |v| {
        v == "idle"
    });
    let visible = page.eval(
        "JSON.stringify([...document.querySelectorAll('#text, #prime, #label, #go')]\
           .map(e => [e.id, e.offsetParent !== null]))",
    );
    assert_eq!(
        visible,
        json!([
            ["text", false],
            ["prime", true],
            ["go", true],
            ["label", false]
        ])
        .to_string(),
        "the write box, and not the classifier's"
    );
    let about = page.eval("document.getElementById('about').textContent");
    assert!(
        about
            .as_str()
            .unwrap()
            .starts_with("A language model: 1 layer of lstm cells, H = 24, one-hot input, "),
        "{about}"
    );

    page.eval("document.getElementById('prime').focus()");
    page.call("Input.insertText", json!({ "text": "the dog " }));
    page.eval(
        "document.getElementById('length').value = '120'; \
         document.getElementById('temperature').value = '0.8'; \
         document.getElementById('seed').value = '4'; \
         document.getElementById('go').click()",
    );
    let shown = page.wait_for(
        "JSON.stringify({state: document.body.dataset.state, \
           given: [...document.querySelectorAll('#written .given')].map(t => t.textContent), \
           tokens: [...document.querySelectorAll('#written .drawn')].map(t => t.textContent), \
           titles: [...document.querySelectorAll('#written .drawn')].map(t => t.title), \
           shades: [...document.querySelectorAll('#written .drawn')].map(t => t.style.background)})",
        |v| {
            let v: Value = serde_json::from_str(v.as_str().unwrap_or("{}")).unwrap_or_default();
            v["state"] == "written"
        },
    );
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    assert_eq!(
        shown["given"],
        json!(["the dog "]),
        "the beginning, as typed"
    );
    let tokens: Vec<&Value> = expected["tokens"].as_array().unwrap().iter().collect();
    assert_eq!(
        shown["tokens"],
        Value::from(
            tokens
                .iter()
                .map(|t| t["token"].clone())
                .collect::<Vec<_>>()
        ),
        "the text the API writes for the same settings, a span a token"
    );
    let titles: Vec<String> = tokens
        .iter()
        .map(|t| format!("p = {:.3}", t["p"].as_f64().unwrap()))
        .collect();
    assert_eq!(shown["titles"], json!(titles), "each token's probability");
    // The shade follows p: the likeliest token is drawn darker than the least likely.
    let alpha = |i: usize| -> f64 {
        let shade = shown["shades"][i].as_str().unwrap();
        let alpha = shade.trim_end_matches(')').rsplit(',').next().unwrap();
        alpha.trim().parse().unwrap_or_else(|_| panic!("{shade}"))
    };
    let p = |i: usize| tokens[i]["p"].as_f64().unwrap();
    let (least, most) = (0..tokens.len()).fold((0, 0), |(lo, hi), i| {
        (
            if p(i) < p(lo) { i } else { lo },
            if p(i) > p(hi) { i } else { hi },
        )
    });
    assert!(p(least) < p(most) && alpha(least) < alpha(most), "{shown}");
    screenshot(&mut page, "serve-page-lm.png");

    // A bad setting shows the server's sentence.
    page.eval(
        "document.getElementById('temperature').value = '-1'; \
         document.getElementById('go').click()",
    );
    let error = page.wait_for(
        "document.body.dataset.state === 'error' && document.getElementById('error').textContent",
        |v| v.is_string(),
    );
    assert!(
        error
            .as_str()
            .unwrap()
            .starts_with("the temperature must be 0"),
        "{error}"
    );

    // A link with ?text= starts writing after that beginning, as a classifier's page reads it.
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/?text=the+cat+", server.address) }),
    );
    let given = page.wait_for(
        "document.body && document.body.dataset.state === 'written' && \
           JSON.stringify([document.getElementById('prime').value, \
             [...document.querySelectorAll('#written .given')].map(t => t.textContent)])",
        |v| v.is_string(),
    );
    assert_eq!(given, json!(["the cat ", ["the cat "]]).to_string());
}
