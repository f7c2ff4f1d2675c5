//! What `GET /metrics` reports, in Prometheus' text format: requests and errors by route, a
//! latency histogram by route, how many texts each forward pass carried, how many tokens
//! generations wrote, and how many requests' work was given up.
//!
//! Everything is a lock-free counter except the errors, which are few and keyed by status code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The routes the server tells apart in its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// `GET /`: the page.
    Page,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /v1/models`.
    Models,
    /// `GET /v1/models/NAME`.
    Model,
    /// `POST /v1/models/NAME:predict`.
    Predict,
    /// `POST /v1/models/NAME:explain`.
    Explain,
    /// `POST /v1/models/NAME:generate`.
    Generate,
    /// Any other path.
    Other,
}

impl Route {
    /// Every route, in the order the metrics list them.
    pub const ALL: [Route; 9] = [
        Route::Page,
        Route::Healthz,
        Route::Metrics,
        Route::Models,
        Route::Model,
        Route::Predict,
        Route::Explain,
        Route::Generate,
        Route::Other,
    ];

    /// The route a request path belongs to, whatever its method.
    pub fn of(path: &str) -> Route {
        match path {
            "/" => Route::Page,
            "/healthz" => Route::Healthz,
            "/metrics" => Route::Metrics,
            "/v1/models" => Route::Models,
            _ => match path.strip_prefix("/v1/models/") {
                Some(rest) if rest.contains('/') || rest.is_empty() => Route::Other,
                Some(rest) if rest.ends_with(":predict") => Route::Predict,
                Some(rest) if rest.ends_with(":explain") => Route::Explain,
                Some(rest) if rest.ends_with(":generate") => Route::Generate,
                Some(_) => Route::Model,
                None => Route::Other,
            },
        }
    }

    /// The value of the `route` label.
    pub fn name(self) -> &'static str {
        match self {
            Route::Page => "page",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Models => "models",
            Route::Model => "model",
            Route::Predict => "predict",
            Route::Explain => "explain",
            Route::Generate => "generate",
            Route::Other => "other",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Upper bounds of the batch size buckets, in texts per forward pass.
const BATCH_BOUNDS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// A Prometheus histogram with fixed buckets. The sum is kept in millionths, as an integer, so
/// that it needs no lock.
struct Histogram {
    bounds: &'static [f64],
    /// Observations in each bucket (not cumulative), then the ones above the last bound.
    counts: Vec<AtomicU64>,
    sum_millionths: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_millionths
            .fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of `name` with the extra `labels`
    /// (`route="predict",` or nothing).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.trim_end_matches(','))
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// The server's counters, shared by every request and every compute thread.
pub struct Metrics {
    requests: Vec<AtomicU64>,
    latency: Vec<Histogram>,
    /// Answers with a status of 400 or more, by route and status code.
    errors: Mutex<BTreeMap<(Route, u16), u64>>,
    batch_texts: Histogram,
    generated_tokens: AtomicU64,
    /// Model requests whose work was given up: their client was gone, their time was over, or
    /// the server was stopping.
    abandoned: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Route::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            latency: Route::ALL
                .iter()
                .map(|_| Histogram::new(&LATENCY_BOUNDS))
                .collect(),
            errors: Mutex::new(BTreeMap::new()),
            batch_texts: Histogram::new(&BATCH_BOUNDS),
            generated_tokens: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request: its route, its status code and how long it took.
    pub fn observe_request(&self, route: Route, status: u16, elapsed: Duration) {
        let i = route as usize;
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        self.latency[i].observe(elapsed.as_secs_f64());
        if status >= 400 {
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            *errors.entry((route, status)).or_default() += 1;
        }
    }

    /// Counts one forward pass over `texts` texts.
    pub fn observe_batch(&self, texts: usize) {
        self.batch_texts.observe(texts as f64);
    }

    /// Counts `tokens` tokens written by a generation.
    pub fn observe_generated(&self, tokens: usize) {
        self.generated_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
    }

    /// Counts one model request whose work was given up, or never started, because nobody
    /// waited for its answer any more.
    pub fn observe_abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP rnn_http_requests_total HTTP requests answered, by route.\n");
        out.push_str("# TYPE rnn_http_requests_total counter\n");
        for route in Route::ALL {
            let n = self.requests[route as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "rnn_http_requests_total{{route=\"{}\"}} {n}",
                route.name()
            );
        }
        out.push_str(
            "# HELP rnn_http_errors_total HTTP requests answered with a status of 400 or more, \
             by route and status code.\n",
        );
        out.push_str("# TYPE rnn_http_errors_total counter\n");
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((route, code), n) in errors {
            let _ = writeln!(
                out,
                "rnn_http_errors_total{{route=\"{}\",code=\"{code}\"}} {n}",
                route.name()
            );
        }
        out.push_str(
            "# HELP rnn_http_request_duration_seconds Time from a request's arrival to its \
             answer, by route.\n",
        );
        out.push_str("# TYPE rnn_http_request_duration_seconds histogram\n");
        for route in Route::ALL {
            self.latency[route as usize].render(
                &mut out,
                "rnn_http_request_duration_seconds",
                &format!("route=\"{}\",", route.name()),
            );
        }
        out.push_str("# HELP rnn_batch_texts Texts in each batched forward pass.\n");
        out.push_str("# TYPE rnn_batch_texts histogram\n");
        self.batch_texts.render(&mut out, "rnn_batch_texts", "");
        out.push_str("# HELP rnn_generated_tokens_total Tokens written by :generate requests.\n");
        out.push_str("# TYPE rnn_generated_tokens_total counter\n");
        let _ = writeln!(
            out,
            "rnn_generated_tokens_total {}",
            self.generated_tokens.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP rnn_abandoned_requests_total Model requests whose work was dropped or given \
             up because nobody waited for the answer: the client had gone, the request was over \
             --max-request-seconds, or the server was stopping.\n",
        );
        out.push_str("# TYPE rnn_abandoned_requests_total counter\n");
        let _ = writeln!(
            out,
            "rnn_abandoned_requests_total {}",
            self.abandoned.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_routes() {
        assert_eq!(Route::of("/"), Route::Page);
        assert_eq!(Route::of("/v1/models"), Route::Models);
        assert_eq!(Route::of("/v1/models/spam"), Route::Model);
        assert_eq!(Route::of("/v1/models/spam:predict"), Route::Predict);
        assert_eq!(Route::of("/v1/models/spam:explain"), Route::Explain);
        assert_eq!(
            Route::of("/v1/models/shakespeare:generate"),
            Route::Generate
        );
        assert_eq!(Route::of("/v1/models/a/b:predict"), Route::Other);
        assert_eq!(Route::of("/v1/models/"), Route::Other);
        assert_eq!(Route::of("/nothing"), Route::Other);
    }

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let metrics = Metrics::default();
        metrics.observe_request(Route::Predict, 200, Duration::from_micros(300));
        metrics.observe_request(Route::Predict, 400, Duration::from_millis(3));
        metrics.observe_request(Route::Predict, 200, Duration::from_secs(60));
        metrics.observe_batch(3);
        metrics.observe_generated(200);
        metrics.observe_generated(5);
        let text = metrics.render();
        for line in [
            "rnn_http_requests_total{route=\"predict\"} 3",
            "rnn_http_errors_total{route=\"predict\",code=\"400\"} 1",
            "rnn_http_request_duration_seconds_bucket{route=\"predict\",le=\"0.0005\"} 1",
            "rnn_http_request_duration_seconds_bucket{route=\"predict\",le=\"0.005\"} 2",
            "rnn_http_request_duration_seconds_bucket{route=\"predict\",le=\"10\"} 2",
            "rnn_http_request_duration_seconds_bucket{route=\"predict\",le=\"+Inf\"} 3",
            "rnn_http_request_duration_seconds_sum{route=\"predict\"} 60.0033",
            "rnn_http_request_duration_seconds_count{route=\"predict\"} 3",
            "rnn_batch_texts_bucket{le=\"2\"} 0",
            "rnn_batch_texts_bucket{le=\"4\"} 1",
            "rnn_batch_texts_count 1",
            "rnn_generated_tokens_total 205",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
