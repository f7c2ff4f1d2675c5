//! The JSON of `POST /v1/models/NAME:generate`: reading a request, writing the answer (whole,
//! or as a stream of lines), and the size of an answer before it is computed.
//!
//! ```text
//! request   {"prime": "The ", "length": 200, "temperature": 1, "top_k": null, "top_p": null,
//!            "seed": 0, "stream": false}                      every field may be left out
//! answer    {"model": NAME, "prime": "The ", "text": "cat sat", "tokens": [{"token": "c", "p": 0.93}, ...]}
//! stream    application/x-ndjson, one line a token as it is drawn, then the end:
//!           {"token": "c", "p": 0.93}
//!           ...
//!           {"done": true, "model": NAME, "prime": "The ", "text": "cat sat"}
//!           or, if the generation fails half-way, {"error": "..."} as the last line
//! ```
//!
//! `p` is the model's probability of the drawn token (at temperature 1), as
//! [`Generator`](crate::lm::Generator) gives it. `text` is the tokens written as `rnn generate`
//! writes them after the prime: one after the other for a character model, separated by a
//! space (and by a space from the prime) for a word model.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::lm::Sampling;
use crate::rnn::Architecture;
use crate::serve::api::{ApiError, MAX_F32_JSON, json_string_len, kind};

/// Tokens written when a request does not say (or `--max-generate-tokens`, if fewer).
pub const DEFAULT_LENGTH: usize = 200;

/// The fields a request may have.
const FIELDS: [&str; 7] = [
    "prime",
    "length",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "stream",
];

/// A generate request, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    /// The beginning the model reads before it writes.
    pub prime: String,
    /// Tokens to write.
    pub length: usize,
    pub sampling: Sampling,
    /// Whether to answer as the tokens are drawn (`application/x-ndjson`).
    pub stream: bool,
}

/// The request in a generate body.
///
/// # Errors
/// 400 for a body that is not a JSON object, an unknown field, a field of the wrong type, or
/// sampling settings out of range ([`Sampling::validate`]'s sentence); 413 for a `length` over
/// `max_length` (`--max-generate-tokens`).
pub fn read_request(body: &[u8], max_length: usize) -> Result<GenerateRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(format!(
            r#"the body must be an object, as in {{"prime": "The ", "length": 100}}, not {}"#,
            kind(&value)
        )));
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field {unknown:?}: a generate request may have {}",
            FIELDS.join(", ")
        )));
    }
    let prime = match fields.get("prime") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(prime)) => prime.clone(),
        Some(other) => return Err(wrong("prime", "a string", other)),
    };
    let length = whole(&fields, "length")?.map_or(Ok(DEFAULT_LENGTH.min(max_length)), |n| {
        usize::try_from(n).map_err(|_| too_long(n, max_length))
    })?;
    if length > max_length {
        return Err(too_long(length as u64, max_length));
    }
    let top_k = whole(&fields, "top_k")?.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
    let sampling = Sampling {
        temperature: number(&fields, "temperature")?.unwrap_or(1.0) as f32,
        top_k,
        top_p: number(&fields, "top_p")?.map(|p| p as f32),
        seed: whole(&fields, "seed")?.unwrap_or(0),
    };
    sampling
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => return Err(wrong("stream", "true or false", other)),
    };
    Ok(GenerateRequest {
        prime,
        length,
        sampling,
        stream,
    })
}

/// A field that must be a whole number from 0 up, if it is there and not null.
fn whole(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong(name, "a whole number from 0 up", &Value::Number(n.clone()))),
        Some(other) => Err(wrong(name, "a whole number from 0 up", other)),
    }
}

/// A field that must be a number, if it is there and not null.
fn number(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(wrong(name, "a number", other)),
    }
}

/// The 400 of a field of the wrong type: `"length" must be a whole number from 0 up, not -3`.
fn wrong(name: &str, what: &str, value: &Value) -> ApiError {
    let shown = match value {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    };
    ApiError::bad_request(format!("{name:?} must be {what}, not {shown}"))
}

/// The 413 of a length over `--max-generate-tokens`.
fn too_long(length: u64, max_length: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "\"length\" is {length} tokens; a generate request may ask for at most {max_length} \
             (--max-generate-tokens)"
        ),
    )
}

/// Bytes a language model holds for every token of a prime while it reads it: the token's id.
/// (The network reads the prime a window at a time, carrying its state, so what it keeps of
/// each step's outputs and probabilities does not grow with the prime; see
/// [`Generator`](crate::lm::Generator).)
pub fn prime_bytes_per_token(_arch: &Architecture) -> usize {
    4
}

/// Tokens of a prime a model of `arch` may read within `max_memory` bytes (at least 1).
pub fn max_prime_tokens(arch: &Architecture, max_memory: usize) -> usize {
    (max_memory / prime_bytes_per_token(arch)).max(1)
}

/// The 413 of a prime longer than the model may read (`--max-prime-memory`), unless `tokens`
/// is at most `max_tokens`.
pub fn check_prime(tokens: usize, max_tokens: usize, arch: &Architecture) -> Result<(), ApiError> {
    if tokens <= max_tokens {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the prime has {tokens} tokens; this model may read at most {max_tokens} \
             (--max-prime-memory: it holds {} bytes for every token of a prime)",
            prime_bytes_per_token(arch)
        ),
    ))
}

/// The text written so far, and every token with its probability, as the answer holds them.
#[derive(Clone, Debug)]
pub struct Written {
    /// What goes between two tokens (see [`Model::join`](crate::model::Model::join)).
    join: &'static str,
    /// Whether the next token is written with `join` before it: after the prime, or a token.
    joined: bool,
    pub text: String,
    /// Each token's text and probability.
    pub tokens: Vec<(String, f32)>,
}

impl Written {
    /// Nothing written yet after `prime`, by a model whose tokens are joined by `join`.
    pub fn new(prime: &str, join: &'static str, length: usize) -> Self {
        Written {
            join,
            joined: !prime.is_empty(),
            text: String::new(),
            tokens: Vec::with_capacity(length),
        }
    }

    /// Writes `token`, drawn with probability `p`.
    pub fn push(&mut self, token: &str, p: f32) {
        if self.joined {
            self.text.push_str(self.join);
        }
        self.joined = true;
        self.text.push_str(token);
        self.tokens.push((token.to_string(), p));
    }
}

/// One token of an answer: `{"token": "c", "p": 0.93}`.
#[derive(Serialize)]
struct TokenJson<'a> {
    token: &'a str,
    p: f32,
}

/// The whole answer of a request that does not stream.
#[derive(Serialize)]
struct Answer<'a> {
    model: &'a str,
    prime: &'a str,
    text: &'a str,
    tokens: Vec<TokenJson<'a>>,
}

/// The last line of a stream that ended well.
#[derive(Serialize)]
struct Done<'a> {
    done: bool,
    model: &'a str,
    prime: &'a str,
    text: &'a str,
}

/// The answer to a request that does not stream, once everything is written.
pub fn answer(model: &str, prime: &str, written: &Written) -> Vec<u8> {
    let answer = Answer {
        model,
        prime,
        text: &written.text,
        tokens: written
            .tokens
            .iter()
            .map(|(token, p)| TokenJson { token, p: *p })
            .collect(),
    };
    serde_json::to_vec(&answer).expect("strings and numbers always serialise")
}

/// The line of a token in a stream.
pub fn token_line(token: &str, p: f32) -> Vec<u8> {
    line(&TokenJson { token, p })
}

/// The last line of a stream that ended well.
pub fn done_line(model: &str, prime: &str, written: &Written) -> Vec<u8> {
    line(&Done {
        done: true,
        model,
        prime,
        text: &written.text,
    })
}

/// The last line of a stream that could not be finished.
pub fn error_line(message: &str) -> Vec<u8> {
    line(&serde_json::json!({ "error": message }))
}

fn line(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("strings and numbers always serialise");
    bytes.push(b'\n');
    bytes
}

/// The longest JSON string of a token in `tokens`, quotes and escapes included: what
/// [`answer_bound`] counts a token as.
pub fn longest_token_json<'a>(tokens: impl IntoIterator<Item = &'a String>) -> usize {
    tokens
        .into_iter()
        .map(|t| json_string_len(t))
        .max()
        .unwrap_or(2)
}

/// Bytes of the answer to a request at most, whole or streamed, from the request alone: the
/// bound taken from the answer budget before anything is computed. `token_json` is
/// [`longest_token_json`] of the model's vocabulary, `join` its
/// [`join`](crate::model::Model::join).
pub fn answer_bound(
    model: &str,
    request: &GenerateRequest,
    token_json: usize,
    join: &str,
) -> usize {
    // {"token":<token>,"p":<p>}, and a comma or a new line
    let entry = 14 + token_json + MAX_F32_JSON + 1;
    // each token in the text: its characters, escaped, and the join before it
    let in_text = token_json - 2 + join.len();
    let text = 2usize.saturating_add(request.length.saturating_mul(in_text));
    // {"done":true,"model":...,"prime":...,"text":...,"tokens":[...]} and some room
    64usize
        .saturating_add(json_string_len(model))
        .saturating_add(json_string_len(&request.prime))
        .saturating_add(text)
        .saturating_add(request.length.saturating_mul(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &str) -> (u16, String) {
        let e = read_request(body.as_bytes(), 500).unwrap_err();
        (e.status.as_u16(), e.message)
    }

    #[test]
    fn every_field_may_be_left_out() {
        let request = read_request(b"{}", 500).unwrap();
        assert_eq!(
            request,
            GenerateRequest {
                prime: String::new(),
                length: DEFAULT_LENGTH,
                sampling: Sampling::default(),
                stream: false,
            }
        );
        let request = read_request(
            br#"{"prime": "ab", "length": 7, "temperature": 0.5, "top_k": 3, "top_p": 0.9,
                 "seed": 42, "stream": true}"#,
            500,
        )
        .unwrap();
        assert_eq!(
            request,
            GenerateRequest {
                prime: "ab".into(),
                length: 7,
                sampling: Sampling {
                    temperature: 0.5,
                    top_k: Some(3),
                    top_p: Some(0.9),
                    seed: 42
                },
                stream: true,
            }
        );
    }

    #[test]
    fn every_bad_request_gets_a_sentence_that_says_what_is_wrong() {
        assert!(error("{").1.starts_with("the body is not valid JSON"));
        assert_eq!(
            error("[1]").1,
            r#"the body must be an object, as in {"prime": "The ", "length": 100}, not a list"#
        );
        assert_eq!(
            error(r#"{"temprature": 1}"#),
            (
                400,
                "unknown field \"temprature\": a generate request may have prime, length, \
                 temperature, top_k, top_p, seed, stream"
                    .into()
            )
        );
        assert_eq!(
            error(r#"{"prime": 3}"#).1,
            "\"prime\" must be a string, not 3"
        );
        assert_eq!(
            error(r#"{"length": -3}"#).1,
            "\"length\" must be a whole number from 0 up, not -3"
        );
        assert_eq!(
            error(r#"{"seed": "x"}"#).1,
            "\"seed\" must be a whole number from 0 up, not a string"
        );
        assert_eq!(
            error(r#"{"stream": 1}"#).1,
            "\"stream\" must be true or false, not 1"
        );
        assert_eq!(
            error(r#"{"temperature": -1}"#),
            (
                400,
                "the temperature must be 0 (always the likeliest token) or more, not -1".into()
            )
        );
        assert_eq!(error(r#"{"top_k": 0}"#).1, "top-k must be at least 1");
        assert_eq!(
            error(r#"{"top_p": 1.5}"#).1,
            "top-p must be more than 0 and at most 1, not 1.5"
        );
        assert_eq!(
            error(r#"{"length": 501}"#),
            (
                413,
                "\"length\" is 501 tokens; a generate request may ask for at most 500 \
                 (--max-generate-tokens)"
                    .into()
            )
        );
        assert_eq!(error(r#"{"length": 18446744073709551615}"#).0, 413);
        let request = read_request(b"{}", 50).unwrap();
        assert_eq!(request.length, 50, "the default, cut to the server's limit");
    }

    #[test]
    fn a_prime_is_bounded_by_the_memory_its_reading_takes() {
        use crate::rnn::CellKind;
        let arch = Architecture {
            layers: 2,
            embed: Some(16),
            ..Architecture::language_model(CellKind::Lstm, 100, 64)
        };
        // a token id each
        assert_eq!(prime_bytes_per_token(&arch), 4);
        assert_eq!(max_prime_tokens(&arch, 4 * 1000), 1000);
        assert_eq!(max_prime_tokens(&arch, 3), 1, "a token always");
        assert!(check_prime(1000, 1000, &arch).is_ok());
        let e = check_prime(1001, 1000, &arch).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.message),
            (
                413,
                "the prime has 1001 tokens; this model may read at most 1000 \
                 (--max-prime-memory: it holds 4 bytes for every token of a prime)"
                    .into()
            )
        );
    }

    #[test]
    fn the_text_is_joined_as_rnn_generate_writes_it() {
        let mut chars = Written::new("ab", "", 3);
        chars.push("c", 0.5);
        chars.push("\n", 0.25);
        assert_eq!(chars.text, "c\n");
        let mut words = Written::new("the", " ", 2);
        words.push("cat", 0.5);
        words.push("sat", 0.5);
        assert_eq!(words.text, " cat sat");
        let mut unprimed = Written::new("", " ", 2);
        unprimed.push("cat", 0.5);
        unprimed.push("sat", 0.5);
        assert_eq!(unprimed.text, "cat sat");
    }

    #[test]
    fn the_bound_holds_the_answer_and_the_stream() {
        let vocab: Vec<String> = ["<unk>", "a", "\"", "\u{1}", "word"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let token_json = longest_token_json(&vocab);
        assert_eq!(token_json, 8); // "\u0001"
        for join in ["", " "] {
            let request = GenerateRequest {
                prime: "pr\"ime".into(),
                length: 40,
                sampling: Sampling::default(),
                stream: false,
            };
            let mut written = Written::new(&request.prime, join, request.length);
            for i in 0..request.length {
                written.push(&vocab[i % vocab.len()], -1.175_494_4e-38);
            }
            let whole = answer("model", &request.prime, &written).len();
            let streamed: usize = written
                .tokens
                .iter()
                .map(|(t, p)| token_line(t, *p).len())
                .sum::<usize>()
                + done_line("model", &request.prime, &written).len();
            let bound = answer_bound("model", &request, token_json, join);
            assert!(
                whole <= bound && streamed <= bound && bound <= 2 * whole.max(streamed) + 200,
                "join {join:?}: {whole} and {streamed} bytes written, bound {bound}"
            );
        }
    }
}
