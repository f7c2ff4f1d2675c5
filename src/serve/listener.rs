//! The accept loop and the connection limits.
//!
//! At most `--max-connections` connections are open at once, and at most
//! `--max-connections-per-peer` of them from one peer address. A connection accepted over a
//! limit takes the place of the connection idle longest (waiting for a request that has not
//! started, with no answer to send: nothing is lost in closing it), as nginx reuses its idle
//! keep-alive connections: over the peer's share, one of that peer's own. When every such
//! connection is busy, the new one is answered 503 (with `Retry-After`) and closed at once. So
//! a crowd of idle connections neither exhausts the file descriptors nor locks new clients out;
//! one peer that keeps its connections busy (sending bodies a byte at a time, say) holds its
//! share, not every connection; and the listener never spins.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
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

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Every connection is busy.
    Full,
    /// Every connection of its peer's share is busy.
    PeerFull,
}

impl Refused {
    /// What the connection gets before it is closed: a whole HTTP answer.
    fn answer(self) -> Vec<u8> {
        let error = match self {
            Refused::Full => "too many connections (--max-connections); try again shortly",
            Refused::PeerFull => {
                "too many connections from your address (--max-connections-per-peer); \
                 try again shortly"
            }
        };
        let body = serde_json::json!({ "error": error }).to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// How many connections may be open: in all, and from one peer address.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `--max-connections`.
    pub total: usize,
    /// `--max-connections-per-peer`.
    pub per_peer: usize,
}

/// Accepts connections on `listener` and serves each with `router` until `stopping` turns
/// true; then accepts no more, lets the connections answer their requests in flight, and
/// returns once they are all closed.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    timeouts: Timeouts,
    stopping: watch::Receiver<bool>,
) {
    let open = Arc::new(Open::new(limits));
    let mut stop = stopping.clone();
    let mut failing = false;
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = super::stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer.ip()),
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
        let slot = match open.admit(peer) {
            Ok(slot) => slot,
            Err(refused) => {
                refuse(stream, refused, &refusing);
                continue;
            }
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

/// Answers 503 to a connection over a limit and closes it: after reading what its client
/// sends for a moment (as a closing connection is, [`connection::linger`]), so that the close
/// does not reset the connection before the client has read the 503, unless
/// [`MAX_REFUSING`] connections are being refused already.
fn refuse(stream: TcpStream, refused: Refused, refusing: &Arc<AtomicUsize>) {
    if stream.try_write(&refused.answer()).is_err() {
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
    limits: Limits,
    next: AtomicU64,
    live: Mutex<Live>,
    /// How many are open, for the shutdown to wait on.
    count: watch::Sender<usize>,
}

/// The open connections by number, with their peers, and how many each peer has.
#[derive(Default)]
struct Live {
    connections: HashMap<u64, (IpAddr, Arc<Activity>)>,
    peers: HashMap<IpAddr, usize>,
}

impl Live {
    /// Closes the connection idle longest among those `of` accepts; `false` if none is idle.
    fn evict_idle(&mut self, of: impl Fn(IpAddr) -> bool) -> bool {
        let oldest = self
            .connections
            .iter()
            .filter(|(_, (peer, a))| of(*peer) && a.is_idle())
            .max_by_key(|(_, (_, a))| a.idle_for())
            .map(|(&id, _)| id);
        let Some(id) = oldest else {
            return false;
        };
        self.remove(id).evict();
        true
    }

    fn remove(&mut self, id: u64) -> Arc<Activity> {
        let (peer, activity) = self
            .connections
            .remove(&id)
            .expect("a live connection is removed once");
        if let Some(n) = self.peers.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.peers.remove(&peer);
            }
        }
        activity
    }
}

/// A place among the open connections, given back when dropped.
struct Slot {
    id: u64,
    activity: Arc<Activity>,
    open: Arc<Open>,
}

impl Open {
    fn new(limits: Limits) -> Self {
        Open {
            limits: Limits {
                total: limits.total.max(1),
                per_peer: limits.per_peer.max(1),
            },
            next: AtomicU64::new(0),
            live: Mutex::new(Live::default()),
            count: watch::Sender::new(0),
        }
    }

    /// A place for a new connection from `peer`: a free one, or that of the connection idle
    /// longest, which is told to close (one of `peer`'s own when it has its share already).
    ///
    /// # Errors
    /// [`Refused::PeerFull`] when `peer` has its share and none of its connections is idle,
    /// [`Refused::Full`] when every connection is busy.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let held = live.peers.get(&peer).copied().unwrap_or(0);
        // a share as large as the whole is no share: the total limit speaks
        if held >= self.limits.per_peer && self.limits.per_peer < self.limits.total {
            if !live.evict_idle(|p| p == peer) {
                return Err(Refused::PeerFull);
            }
        } else if live.connections.len() >= self.limits.total && !live.evict_idle(|_| true) {
            return Err(Refused::Full);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        live.connections.insert(id, (peer, Arc::clone(&activity)));
        *live.peers.entry(peer).or_default() += 1;
        self.count.send_replace(live.connections.len());
        Ok(Slot {
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
        // an evicted connection has been removed already
        if live.connections.contains_key(&self.id) {
            live.remove(self.id);
        }
        self.open.count.send_replace(live.connections.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn open(total: usize, per_peer: usize) -> Arc<Open> {
        Arc::new(Open::new(Limits { total, per_peer }))
    }

    #[test]
    fn over_the_limit_the_connection_idle_longest_makes_room() {
        let open = open(2, 2);
        let a = open.admit(HERE).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = open.admit(THERE).unwrap();
        let c = open.admit(THERE).expect("a is idle: it makes room");
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
        let open = open(1, 1);
        let a = open.admit(HERE).unwrap();
        a.activity.read(); // a request head has started
        assert_eq!(open.admit(THERE).err(), Some(Refused::Full));
    }

    #[test]
    fn a_peer_with_its_share_busy_is_refused_and_the_others_still_get_in() {
        let open = open(4, 2);
        let mine: Vec<Slot> = (0..2).map(|_| open.admit(HERE).unwrap()).collect();
        for slot in &mine {
            slot.activity.read(); // a body trickling in, say
        }
        assert_eq!(open.admit(HERE).err(), Some(Refused::PeerFull));
        let theirs = open.admit(THERE).expect("room left for another peer");
        // Over its share, a peer's own idle connection makes room, not another peer's.
        let idle = open.admit(THERE).unwrap();
        let again = open.admit(THERE).expect("its idle connection makes room");
        assert!(idle.activity.is_evicted() ^ theirs.activity.is_evicted());
        assert!(mine.iter().all(|s| !s.activity.is_evicted()));
        drop((mine, theirs, idle, again));
        assert_eq!(*open.count.borrow(), 0);
        assert!(open.live.lock().unwrap().peers.is_empty());
    }

    #[test]
    fn the_refusals_are_whole_http_answers_that_say_when_to_come_back() {
        for refused in [Refused::Full, Refused::PeerFull] {
            let answer = refused.answer();
            let text = std::str::from_utf8(&answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("content-length: {}", body.len())));
            assert!(head.contains("retry-after: 1"));
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(
                json["error"]
                    .as_str()
                    .unwrap()
                    .contains("--max-connections")
            );
        }
    }
}
