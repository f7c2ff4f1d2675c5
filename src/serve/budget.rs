//! Byte budgets: how many bytes of request bodies, and of answers, the server holds in memory
//! at once, over all requests.
//!
//! A [`Budget`] is a semaphore whose permits are bytes. A request takes a [`Reservation`] from
//! it before it holds the bytes (a body's as they arrive, an answer's before it is computed)
//! and gives them back when the reservation is dropped: for an answer, when its body has been
//! handed to the connection or the connection is gone. When the budget is spent, the request
//! is refused with 503 rather than queued, so that memory has a bound whatever the clients do.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A number of bytes the server may hold at once, shared by every request.
#[derive(Clone, Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
}

impl Budget {
    /// A budget of `total` bytes (at most [`Semaphore::MAX_PERMITS`]; more is that).
    pub fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The bytes of the whole budget.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The bytes not taken now.
    pub fn free(&self) -> usize {
        self.bytes.available_permits()
    }

    /// An empty reservation, to grow as bytes arrive.
    pub fn empty(&self) -> Reservation {
        self.take(0)
            .expect("no byte is always there to take from an open semaphore")
    }

    /// Takes `bytes` at once, or `None` if fewer are free.
    pub fn take(&self, bytes: usize) -> Option<Reservation> {
        let n = u32::try_from(bytes).ok()?;
        let permit = Arc::clone(&self.bytes).try_acquire_many_owned(n).ok()?;
        Some(Reservation { permit })
    }

    /// Takes `bytes` only if that is at most half of what is free now, or `None`.
    ///
    /// Answers are taken this way: large answers then stop being admitted while the free part
    /// is still at least as large as they are, and that part is left to small ones. A few
    /// clients asking for large answers that they never read cannot spend the whole budget,
    /// and a predict request, whose answer is small, is still answered.
    pub fn take_share(&self, bytes: usize) -> Option<Reservation> {
        if bytes > self.free() / 2 {
            return None;
        }
        self.take(bytes)
    }
}

impl Reservation {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.permit.num_permits()
    }

    /// Holds `more` bytes too, taken from the same budget, or returns `false` (and holds what
    /// it held) if fewer are free.
    pub fn grow(&mut self, more: usize) -> bool {
        let Ok(n) = u32::try_from(more) else {
            return false;
        };
        match Arc::clone(self.permit.semaphore()).try_acquire_many_owned(n) {
            Ok(extra) => {
                self.permit.merge(extra);
                true
            }
            Err(_) => false,
        }
    }

    /// Holds exactly `bytes`: gives back what is over, or takes what is missing. Returns
    /// `false` (and holds what it held) when the missing bytes are not free.
    pub fn resize(&mut self, bytes: usize) -> bool {
        let held = self.bytes();
        if bytes > held {
            return self.grow(bytes - held);
        }
        drop(self.permit.split(held - bytes));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_given_back_when_a_reservation_is_dropped() {
        let budget = Budget::new(100);
        let a = budget.take(60).unwrap();
        assert!(budget.take(41).is_none());
        let b = budget.take(40).unwrap();
        assert_eq!(budget.free(), 0);
        drop(a);
        assert_eq!(budget.free(), 60);
        drop(b);
        assert_eq!(budget.free(), 100);
    }

    #[test]
    fn a_reservation_grows_and_shrinks_within_the_budget() {
        let budget = Budget::new(100);
        let mut r = budget.empty();
        assert!(r.grow(30));
        assert!(r.grow(70));
        assert!(!r.grow(1), "nothing left");
        assert_eq!(r.bytes(), 100);
        assert!(r.resize(25));
        assert_eq!((r.bytes(), budget.free()), (25, 75));
        assert!(r.resize(90));
        assert!(!r.resize(101));
        assert_eq!((r.bytes(), budget.free()), (90, 10));
    }

    #[test]
    fn a_share_leaves_at_least_as_much_free_as_it_takes() {
        let budget = Budget::new(1000);
        let big: Vec<Reservation> = std::iter::from_fn(|| budget.take_share(200)).collect();
        // 1000 -> 800 -> 600 -> 400 -> 200, then 200 is more than half of what is free
        assert_eq!(big.len(), 4);
        assert_eq!(budget.free(), 200);
        assert!(
            budget.take_share(100).is_some(),
            "a small answer still fits"
        );
    }

    #[test]
    fn more_bytes_than_a_semaphore_takes_at_once_are_refused_not_a_panic() {
        let budget = Budget::new(usize::MAX);
        assert_eq!(budget.total(), Semaphore::MAX_PERMITS);
        assert!(budget.take(u32::MAX as usize + 1).is_none());
        assert!(!budget.empty().grow(u32::MAX as usize + 1));
    }
}
