//! Bodies within the server's limits: reading a request's body (its size, its time, its share
//! of the body budget), and an answer's body, whole or streamed as it is computed, which holds
//! its bytes of the answer budget until the connection has taken them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::serve::api::ApiError;
use crate::serve::budget::{Budget, Reservation};

/// How a request body may be read.
#[derive(Clone, Debug)]
pub struct BodyLimits {
    /// Bytes at most (`--max-body`).
    pub max_bytes: usize,
    /// Time at most, from the end of the request's head to the last byte (`--body-timeout`).
    pub timeout: Duration,
}

/// Reads `body` whole, holding its bytes in `budget` as they arrive.
///
/// A client that sends its body slowly holds only the bytes it has sent, and no permit of the
/// model requests in progress: a thousand clients sending a byte a second cost the server
/// their connections and a few bytes each, and predict requests are still answered.
///
/// # Errors
/// 413 when the body is over `max_bytes`, 408 when it has not all arrived within `timeout`,
/// 503 when the body budget has no room for it, 400 when the connection breaks or the
/// framing is wrong.
pub async fn read(
    mut body: Body,
    limits: &BodyLimits,
    budget: &Budget,
) -> Result<(Bytes, Reservation), ApiError> {
    let mut held = budget.empty();
    let mut bytes = Vec::new();
    let whole = async {
        while let Some(frame) =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
        {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("the body could not be read: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            if bytes.len() + data.len() > limits.max_bytes {
                return Err(too_large());
            }
            if !held.grow(data.len()) {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server holds as many request bodies as it may \
                     (--max-pending × --max-body bytes); try again shortly",
                ));
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.timeout, whole).await {
        Ok(Ok(())) => Ok((Bytes::from(bytes), held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (--body-timeout)",
                limits.timeout.as_secs_f64()
            ),
        )),
    }
}

/// The 413 of a body over `--max-body`.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the body is larger than the server's limit (--max-body)",
    )
}

/// Bytes handed to the connection at a time. The connection takes more only while its own
/// buffer has room, so an answer its client does not read stays here, counted in its budget.
const CHUNK: usize = 16 * 1024;

/// An answer's bytes, with the [`Reservation`] that counts them in the answer budget. The
/// reservation is given back when the body is dropped: once the connection has taken the last
/// chunk, or when the connection closes.
pub struct AnswerBody {
    rest: Bytes,
    _held: Reservation,
}

impl AnswerBody {
    /// The body of `bytes`, counted in `held` until it is dropped.
    pub fn new(bytes: Bytes, held: Reservation) -> Self {
        AnswerBody {
            rest: bytes,
            _held: held,
        }
    }
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(Frame::data(self.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// An answer streamed as it is computed: the pieces that come on a channel, handed to the
/// connection as they come (those already there together, up to `CHUNK` bytes), until the
/// channel closes. It holds a [`Reservation`] of the answer budget taken for the whole answer
/// before it was computed, and gives back each piece's bytes once the connection has taken it.
pub struct StreamBody {
    pieces: mpsc::UnboundedReceiver<Bytes>,
    held: Reservation,
}

impl StreamBody {
    /// The body of what comes on `pieces`, counted in `held` until the connection takes it.
    pub fn new(pieces: mpsc::UnboundedReceiver<Bytes>, held: Reservation) -> Self {
        StreamBody { pieces, held }
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let first = match self.pieces.poll_recv(cx) {
            Poll::Ready(Some(piece)) => piece,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let mut data = first;
        if data.len() < CHUNK && !self.pieces.is_empty() {
            let mut joined = data.to_vec();
            while joined.len() < CHUNK {
                match self.pieces.try_recv() {
                    Ok(piece) => joined.extend_from_slice(&piece),
                    Err(_) => break,
                }
            }
            data = Bytes::from(joined);
        }
        // Handed over: the connection's own buffer holds it from now.
        let left = self.held.bytes().saturating_sub(data.len());
        self.held.resize(left);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: usize, timeout_ms: u64) -> BodyLimits {
        BodyLimits {
            max_bytes,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn a_body_is_read_whole_and_its_bytes_are_held_until_dropped() {
        let budget = Budget::new(100);
        let (bytes, held) = read(Body::from("0123456789"), &limits(10, 1000), &budget)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"0123456789");
        assert_eq!(budget.free(), 90);
        drop(held);
        assert_eq!(budget.free(), 100);
    }

    #[tokio::test]
    async fn over_the_limit_or_the_budget_is_refused_and_nothing_is_held() {
        let budget = Budget::new(5);
        let e = read(Body::from("0123456789"), &limits(9, 1000), &budget)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = read(Body::from("0123456789"), &limits(100, 1000), &budget)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(budget.free(), 5);
    }

    /// A body whose bytes never come.
    struct Never;

    impl http_body::Body for Never {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_a_408() {
        let budget = Budget::new(100);
        let e = read(Body::new(Never), &limits(100, 50), &budget)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert!(e.message.contains("--body-timeout"), "{}", e.message);
    }

    #[test]
    fn an_answer_is_handed_over_in_chunks_and_gives_its_bytes_back_when_dropped() {
        let budget = Budget::new(100_000);
        let held = budget.take(40_000).unwrap();
        let mut body = AnswerBody::new(Bytes::from(vec![b'x'; 40_000]), held);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut sizes = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) =
            http_body::Body::poll_frame(Pin::new(&mut body), &mut cx)
        {
            sizes.push(frame.into_data().unwrap().len());
        }
        assert_eq!(sizes, [CHUNK, CHUNK, 40_000 - 2 * CHUNK]);
        assert!(http_body::Body::is_end_stream(&body));
        assert_eq!(budget.free(), 60_000, "held until dropped");
        drop(body);
        assert_eq!(budget.free(), 100_000);
    }

    #[test]
    fn a_stream_hands_over_what_has_come_and_gives_its_bytes_back_as_it_goes() {
        let budget = Budget::new(1000);
        let held = budget.take(100).unwrap();
        let (send, pieces) = mpsc::unbounded_channel();
        let mut body = StreamBody::new(pieces, held);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut poll =
            |body: &mut StreamBody| match http_body::Body::poll_frame(Pin::new(body), &mut cx) {
                Poll::Ready(Some(Ok(frame))) => Some(Some(frame.into_data().unwrap())),
                Poll::Ready(None) => Some(None),
                Poll::Pending => None,
            };
        assert_eq!(poll(&mut body), None, "nothing yet: pending");
        send.send(Bytes::from_static(b"one\n")).unwrap();
        send.send(Bytes::from_static(b"two\n")).unwrap();
        assert_eq!(
            poll(&mut body),
            Some(Some(Bytes::from_static(b"one\ntwo\n"))),
            "what has come, together"
        );
        assert_eq!(budget.free(), 908);
        send.send(Bytes::from_static(b"end\n")).unwrap();
        drop(send);
        assert_eq!(poll(&mut body), Some(Some(Bytes::from_static(b"end\n"))));
        assert_eq!(poll(&mut body), Some(None), "the channel closed: the end");
        drop(body);
        assert_eq!(budget.free(), 1000);
    }
}
