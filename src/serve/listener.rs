//! The accept loop and the connection limit.
//!
//! At most `--max-connections` connections are open at once. A connection accepted over the
//! limit takes the place of the connection idle longest (waiting for a request that has not
//! started, with no answer to send: nothing is lost in closing it), as nginx reuses its idle
//! keep-alive connections; when every connection is busy, the new one is answered 503 and
//! closed at once. So a crowd of idle connections neither exhausts the file descriptors nor
//! locks new clients out, and the listener never spins.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::serve::connection::{self, Activity, Timeouts};

/// How long the accept loop pauses when accepting fails for want of resources (file
/// descriptors, memory): the pending connections wait in the kernel's queue meanwhile.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a connection over the limit gets before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: application/json\r\ncontent-length: 71\r\n\r\n\
{\"error\":\"too many connections (--max-connections); try again shortly\"}";

/// Accepts connections on `listener` and serves each with `router` until `stopping` turns
/// true; then accepts no more, lets the connections answer their requests in flight, and
/// returns once they are all closed.
pub async fn run(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    timeouts: Timeouts,
    stopping: watch::Receiver<bool>,
) {
    let open = Arc::new(Open::new(max_connections));
    let mut stop = stopping.clone();
    let mut failing = false;
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = super::stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_about_one_connection(&e) => continue,
            Err(e) => {
                if !failing {
                    eprintln!("cannot accept connections ({e}); retrying");
                }
                failing = true;
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        failing = false;
        let Some(slot) = open.admit() else {
            refuse(stream, &refusing);
            continue;
        };
        let (router, stopping) = (router.clone(), stopping.clone());
        tokio::spawn(async move {
            connection::serve(
                stream,
                Arc::clone(&slot.activity),
                router,
                timeouts,
                stopping,
            )
            .await;
            drop(slot);
        });
    }
    drop(listener);
    let mut count = open.count.subscribe();
    let _ = count.wait_for(|&n| n == 0).await;
}

/// Whether an accept error concerns only the connection being accepted (the client gave up,
/// say), so that the next accept may succeed at once.
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Connections over the limit being refused at once at most; past that, they are closed
/// without the wait that lets their clients read the 503.
const MAX_REFUSING: usize = 64;

/// Answers 503 to a connection over the limit and closes it: after reading what its client
/// sends for a moment (as a closing connection is, [`connection::linger`]), so that the close
/// does not reset the connection before the client has read the 503, unless
/// [`MAX_REFUSING`] connections are being refused already.
fn refuse(stream: TcpStream, refusing: &Arc<AtomicUsize>) {
    if stream.try_write(TOO_MANY).is_err() {
        return;
    }
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = Arc::clone(refusing);
    tokio::spawn(async move {
        connection::linger(stream).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

/// The open connections.
struct Open {
    max: usize,
    next: AtomicU64,
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    /// How many are open, for the shutdown to wait on.
    count: watch::Sender<usize>,
}

/// A place among the open connections, given back when dropped.
struct Slot {
    id: u64,
    activity: Arc<Activity>,
    open: Arc<Open>,
}

impl Open {
    fn new(max: usize) -> Self {
        Open {
            max: max.max(1),
            next: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
            count: watch::Sender::new(0),
        }
    }

    /// A place for a new connection: a free one, or that of the connection idle longest,
    /// which is told to close; `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= self.max {
            let (&oldest, _) = live
                .iter()
                .filter(|(_, a)| a.is_idle())
                .max_by_key(|(_, a)| a.idle_for())?;
            if let Some(evicted) = live.remove(&oldest) {
                evicted.evict();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        live.insert(id, Arc::clone(&activity));
        self.count.send_replace(live.len());
        Some(Slot {
            id,
            activity,
            open: Arc::clone(self),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut live = self
            .open
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.remove(&self.id);
        self.open.count.send_replace(live.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_limit_the_connection_idle_longest_makes_room() {
        let open = Arc::new(Open::new(2));
        let a = open.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = open.admit().unwrap();
        let c = open.admit().expect("a is idle: it makes room");
        assert!(a.activity.is_evicted());
        assert!(!b.activity.is_evicted());
        assert_eq!(*open.count.borrow(), 2);
        drop(a); // its task ends: nothing more to give back
        assert_eq!(*open.count.borrow(), 2);
        drop((b, c));
        assert_eq!(*open.count.borrow(), 0);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let open = Arc::new(Open::new(1));
        let a = open.admit().unwrap();
        a.activity.read(); // a request head has started
        assert!(open.admit().is_none());
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(TOO_MANY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
