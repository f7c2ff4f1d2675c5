//! The JSON of the KServe V1 / TensorFlow Serving REST protocol: reading a request's
//! `instances`, writing predictions and explanations, and the `{"error": ...}` of a bad request.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::model::{Explanation, Model, Prediction};

/// A request the server will not answer, with the status and the sentence that say why.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Whether the answer closes the connection (`Connection: close`): when the rest of the
    /// request's body will not be read, the connection cannot carry another request.
    pub close: bool,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            close: false,
        }
    }

    /// The same error, closing the connection.
    pub fn closing(self) -> Self {
        ApiError {
            close: true,
            ..self
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

/// What a 503 says in `Retry-After`: seconds to wait before trying again.
pub static RETRY_AFTER: axum::http::HeaderValue = axum::http::HeaderValue::from_static("1");

impl IntoResponse for ApiError {
    /// The JSON error; a 503 says when to try again (`Retry-After`), and an error that ends
    /// the connection says so (`Connection: close`).
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, RETRY_AFTER.clone());
        }
        if self.close {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// The texts of a predict or explain request body, `{"instances": ["text", ...]}`.
///
/// # Errors
/// 400 for a body that is not JSON, not an object with an `instances` array, an empty array,
/// an instance that is not a string or is empty; 413 for more than `max_instances` texts.
pub fn read_instances(body: &[u8], max_instances: usize) -> Result<Vec<String>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Some(instances) = value.get("instances") else {
        return Err(ApiError::bad_request(
            r#"the body needs "instances": a list of texts, as in {"instances": ["some text"]}"#,
        ));
    };
    let Value::Array(instances) = instances else {
        return Err(ApiError::bad_request(
            r#""instances" must be a list of texts"#,
        ));
    };
    if instances.is_empty() {
        return Err(ApiError::bad_request(r#""instances" is empty"#));
    }
    if instances.len() > max_instances {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} instances; a request may have at most {max_instances}",
                instances.len()
            ),
        ));
    }
    instances
        .iter()
        .enumerate()
        .map(|(i, instance)| match instance {
            Value::String(text) if text.is_empty() => Err(ApiError::bad_request(format!(
                "instances[{i}] is an empty string"
            ))),
            Value::String(text) => Ok(text.clone()),
            other => Err(ApiError::bad_request(format!(
                "instances[{i}] is not a string but {}",
                kind(other)
            ))),
        })
        .collect()
}

/// What a JSON value is, in words.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What an answer will hold, known before it is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerSize {
    /// Probabilities in the explanations: tokens × labels, over every text (0 for predict).
    pub probs: usize,
    /// Bytes of the answer's JSON at most.
    pub bytes: usize,
}

/// The longest JSON of an `f32` (serde_json writes the shortest decimal that reads back as the
/// same value, at most 9 significant digits with a sign and an exponent: `-1.17549435e-38`).
pub(crate) const MAX_F32_JSON: usize = 16;

/// The size of the answer to `texts`, with explanations if `explain`, from the texts' tokens
/// and the labels' names, without running the network: the bound the server checks
/// `--max-explain-probs` against and takes from the answer budget before it computes.
pub fn answer_size(model: &Model, texts: &[String], explain: bool) -> AnswerSize {
    let labels = model.labels().len();
    // {"<label>":<p>,...}
    let probs_json = 2
        + model
            .labels()
            .iter()
            .map(|l| json_string_len(l) + 1 + MAX_F32_JSON)
            .sum::<usize>()
        + labels.saturating_sub(1);
    let longest_label = model
        .labels()
        .iter()
        .map(|l| json_string_len(l))
        .max()
        .unwrap_or(2);
    // {"label":<label>,"probs":{...}},
    let prediction = 19 + longest_label + probs_json + 1;
    let mut size = AnswerSize {
        probs: 0,
        // {"predictions":[...],"explanations":[...]} and some room
        bytes: 64 + texts.len() * prediction,
    };
    if !explain {
        return size;
    }
    let unk_json = json_string_len(crate::data::vocab::UNK);
    let limit = model.max_len.unwrap_or(usize::MAX);
    for text in texts {
        let (mut tokens, mut token_bytes) = (0usize, 0usize);
        model.tokens.for_each(text, |t| {
            if tokens < limit {
                tokens += 1;
                // a token is shown as it is, or as <unk>
                token_bytes += json_string_len(t).max(unk_json);
            }
        });
        size.probs = size.probs.saturating_add(tokens.saturating_mul(labels));
        // [{"token":<token>,"probs":{...}},...],
        let steps = tokens
            .saturating_mul(19 + probs_json + 1)
            .saturating_add(token_bytes);
        size.bytes = size.bytes.saturating_add(steps).saturating_add(3);
    }
    size
}

/// The length of `s` written as a JSON string, quotes and escapes included, as serde_json
/// writes it.
pub(crate) fn json_string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// The answer to a predict request (`explanations` only for explain requests).
#[derive(Serialize)]
pub struct Predictions<'a> {
    predictions: Vec<PredictionJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanations: Option<Vec<Vec<Step<'a>>>>,
}

impl<'a> Predictions<'a> {
    /// The JSON of `predictions` and, when given, `explanations`, one a text.
    pub fn new(
        model: &'a Model,
        predictions: &'a [Prediction],
        explanations: Option<&'a [Explanation]>,
    ) -> Self {
        let labels = model.labels();
        Predictions {
            predictions: predictions
                .iter()
                .map(|p| PredictionJson {
                    label: &labels[p.label],
                    probs: Probs {
                        labels,
                        probs: &p.probs,
                    },
                })
                .collect(),
            explanations: explanations.map(|all| {
                all.iter()
                    .map(|e| {
                        e.tokens
                            .iter()
                            .zip(e.after_each_token())
                            .map(|(token, probs)| Step {
                                token,
                                probs: probs.map(|probs| Probs { labels, probs }),
                            })
                            .collect()
                    })
                    .collect()
            }),
        }
    }
}

/// `{"label": L, "probs": {class: p, ...}}`.
#[derive(Serialize)]
struct PredictionJson<'a> {
    label: &'a str,
    probs: Probs<'a>,
}

/// One token of an explanation: `{"token": t, "probs": {class: p, ...}}`, the probabilities
/// after the network has read it, or `"probs": null` after a token of a long text where no
/// evaluated prefix ends (see [`Explanation`]).
#[derive(Serialize)]
struct Step<'a> {
    token: &'a str,
    probs: Option<Probs<'a>>,
}

/// Probabilities as an object from label to probability, in the model's label order. Each is
/// written as the shortest decimal that reads back as the same `f32`, as `rnn predict --probs`
/// writes it.
struct Probs<'a> {
    labels: &'a [String],
    probs: &'a [f32],
}

impl Serialize for Probs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.labels.len()))?;
        for (label, p) in self.labels.iter().zip(self.probs) {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn message(body: &str) -> (u16, String) {
        let e = read_instances(body.as_bytes(), 3).unwrap_err();
        (e.status.as_u16(), e.message)
    }

    #[test]
    fn instances_are_read_in_order() {
        let texts = read_instances(br#"{"instances": ["a b", "c"], "x": 1}"#, 3).unwrap();
        assert_eq!(texts, ["a b", "c"]);
    }

    #[test]
    fn every_bad_body_gets_a_sentence_that_says_what_is_wrong() {
        assert!(message("{").1.starts_with("the body is not valid JSON"));
        assert!(
            message(r#"{"inputs": []}"#)
                .1
                .contains("needs \"instances\"")
        );
        assert!(
            message(r#"{"instances": "a"}"#)
                .1
                .contains("must be a list")
        );
        assert!(message(r#"{"instances": []}"#).1.contains("is empty"));
        assert_eq!(
            message(r#"{"instances": ["a", 7]}"#),
            (400, "instances[1] is not a string but a number".into())
        );
        assert_eq!(
            message(r#"{"instances": ["a", ""]}"#),
            (400, "instances[1] is an empty string".into())
        );
        assert_eq!(
            message(r#"{"instances": ["a", "b", "c", "d"]}"#),
            (413, "4 instances; a request may have at most 3".into())
        );
    }

    #[test]
    fn probabilities_are_written_as_the_shortest_f32_decimals() {
        let labels = ["neg".to_string(), "pos".to_string()];
        let probs = Probs {
            labels: &labels,
            probs: &[0.1, 0.9],
        };
        assert_eq!(
            serde_json::to_string(&probs).unwrap(),
            r#"{"neg":0.1,"pos":0.9}"#
        );
    }

    #[test]
    fn a_token_where_no_evaluated_prefix_ends_has_null_probabilities() {
        let data = [("good", "pos"), ("bad", "neg")];
        let model = Model::for_data(data, &ModelConfig::seed()).unwrap();
        let explanation = Explanation {
            tokens: vec!["good".into(), "bad".into(), "good".into()],
            ends: vec![2, 3],
            probs: vec![vec![0.25, 0.75], vec![0.5, 0.5]],
            wide: None,
        };
        let predictions = [Prediction {
            label: 0,
            probs: vec![0.5, 0.5],
        }];
        let explanations = [explanation];
        let json = Predictions::new(&model, &predictions, Some(&explanations));
        let json = serde_json::to_value(&json).unwrap();
        assert_eq!(
            json["explanations"][0],
            serde_json::json!([
                {"token": "good", "probs": null},
                {"token": "bad", "probs": {"neg": 0.25, "pos": 0.75}},
                {"token": "good", "probs": {"neg": 0.5, "pos": 0.5}},
            ])
        );
    }

    #[test]
    fn the_answer_size_bounds_the_json_written_and_counts_the_probabilities() {
        let data = [("good", "pos"), ("bad", "neg"), ("not good", "neg")];
        let config = ModelConfig {
            hidden: 4,
            ..ModelConfig::seed()
        };
        let model = Model::for_data(data, &config).unwrap();
        // unknown tokens, quotes and a control character, which JSON escapes
        let texts = vec![
            "good bad not zorg".to_string(),
            "\u{1}w \"one\"".to_string(),
        ];
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let predictions = model.predict(&refs).unwrap();
        let explanations: Vec<Explanation> = refs.iter().map(|t| model.explain(t)).collect();
        for explain in [false, true] {
            let json = Predictions::new(&model, &predictions, explain.then_some(&explanations[..]));
            let written = serde_json::to_vec(&json).unwrap().len();
            let size = answer_size(&model, &texts, explain);
            assert!(
                written <= size.bytes && size.bytes <= 2 * written + 100,
                "explain {explain}: {written} bytes written, bound {}",
                size.bytes
            );
        }
        assert_eq!(answer_size(&model, &texts, false).probs, 0);
        assert_eq!(answer_size(&model, &texts, true).probs, (4 + 2) * 2);
    }
}
