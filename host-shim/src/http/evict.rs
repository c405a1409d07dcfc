//! The probe port's open connections, and which one goes when one too
//! many is open: connections are evicted, not refused (the rules are in
//! [`super`]'s docs), and the evictions are counted and logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::{EVICTION_LOG_EVERY, MAX_CONNECTIONS};

/// The open connections, oldest first, and how many were evicted.
#[derive(Default)]
pub(super) struct Registry {
    /// By id; ids grow, so this is oldest first.
    open: Mutex<BTreeMap<u64, Slot>>,
    next_id: AtomicU64,
    evicted: AtomicU64,
}

/// One open connection, as the registry sees it.
struct Slot {
    peer: SocketAddr,
    accepted: Instant,
    /// Set once the client delivered a complete request head.
    head: Arc<AtomicBool>,
    /// Notified to evict the connection.
    evict: Arc<Notify>,
    /// A duplicate of the connection's descriptor (non-blocking), to see
    /// whether bytes wait unread (`None` if it could not be made).
    socket: Option<std::net::TcpStream>,
}

impl Slot {
    /// Whether the client sent bytes the connection's task has not read
    /// yet (a request on its way in, not an idle client).
    fn has_unread_bytes(&self) -> bool {
        let mut byte = [0u8; 1];
        self.socket
            .as_ref()
            .is_some_and(|socket| matches!(socket.peek(&mut byte), Ok(n) if n > 0))
    }
}

/// A non-blocking duplicate of `stream`'s descriptor.
fn duplicate(stream: &TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    let socket = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned().ok()?);
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

/// Which connection to evict, given (id, delivered a complete head, has
/// unread bytes) oldest first: the oldest without a complete head and
/// without unread bytes, else the oldest without a complete head, else
/// the oldest.
///
/// One pass: each slot is looked at (and its socket peeked at) once.
fn victim(slots: impl Iterator<Item = (u64, bool, bool)>) -> Option<u64> {
    let (mut headless, mut oldest) = (None, None);
    for (id, head, unread) in slots {
        if !head && !unread {
            return Some(id);
        }
        if !head {
            headless = headless.or(Some(id));
        }
        oldest = oldest.or(Some(id));
    }
    headless.or(oldest)
}

/// A connection evicted to make room.
pub(super) struct Eviction {
    peer: SocketAddr,
    /// How long it was open.
    age: Duration,
    /// Whether it had delivered a complete request head.
    head: bool,
    /// Evictions so far, this one included.
    total: u64,
}

impl Registry {
    fn open(&self) -> MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub(super) fn len(&self) -> usize {
        self.open().len()
    }

    /// Connections evicted so far.
    pub(super) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Registers a connection just accepted; at [`MAX_CONNECTIONS`] it
    /// first evicts an older one (the new one is always served).
    pub(super) fn admit(
        self: &Arc<Self>,
        stream: &TcpStream,
        peer: SocketAddr,
    ) -> (Entry, Option<Eviction>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let head = Arc::new(AtomicBool::new(false));
        let evict = Arc::new(Notify::new());
        let evicted = {
            let mut open = self.open();
            let evicted = if open.len() >= MAX_CONNECTIONS {
                victim(open.iter().map(|(id, slot)| {
                    let head = slot.head.load(Ordering::SeqCst);
                    // Only candidates are peeked at.
                    (*id, head, !head && slot.has_unread_bytes())
                }))
                .and_then(|id| open.remove(&id))
            } else {
                None
            };
            open.insert(
                id,
                Slot {
                    peer,
                    accepted: Instant::now(),
                    head: Arc::clone(&head),
                    evict: Arc::clone(&evict),
                    socket: duplicate(stream),
                },
            );
            evicted
        };
        let eviction = evicted.map(|slot| {
            // A stored permit: the connection ends even if its task has
            // not started waiting yet.
            slot.evict.notify_one();
            Eviction {
                peer: slot.peer,
                age: slot.accepted.elapsed(),
                head: slot.head.load(Ordering::SeqCst),
                total: self.evicted.fetch_add(1, Ordering::Relaxed) + 1,
            }
        });
        let entry = Entry {
            registry: Arc::clone(self),
            id,
            head,
            evict,
        };
        (entry, eviction)
    }
}

/// A connection's place in the [`Registry`]; dropping it (the connection
/// answered, failed or evicted) frees the place.
pub(super) struct Entry {
    registry: Arc<Registry>,
    id: u64,
    head: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

impl Entry {
    /// The flag to set once the client delivered a complete request head.
    pub(super) fn head(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.head)
    }

    /// Completes when the connection is evicted.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry.open().remove(&self.id);
    }
}

/// Rate-limited eviction lines on stderr.
#[derive(Default)]
pub(super) struct EvictionLog {
    /// Evictions not yet logged, and the last of them.
    pending: u64,
    last: Option<Eviction>,
    /// When the last line was written.
    written: Option<Instant>,
}

impl EvictionLog {
    pub(super) fn record(&mut self, eviction: Eviction) {
        self.pending += 1;
        self.last = Some(eviction);
        if self
            .written
            .is_none_or(|at| at.elapsed() >= EVICTION_LOG_EVERY)
        {
            self.flush();
        }
    }

    /// When the pending evictions are due to be logged.
    pub(super) fn due(&self) -> Option<Instant> {
        match (self.pending, self.written) {
            (0, _) | (_, None) => None,
            (_, Some(at)) => Some(at + EVICTION_LOG_EVERY),
        }
    }

    /// Writes the line for the pending evictions, if any.
    pub(super) fn flush(&mut self) {
        let Some(last) = self.last.take() else {
            return;
        };
        tracing::warn!(
            "probes: at the limit of {MAX_CONNECTIONS} connections: evicted {} \
             connection(s) to serve newer ones (the last from {}, open {:.1} s, {}); \
             {} evicted in all",
            self.pending,
            last.peer,
            last.age.as_secs_f64(),
            if last.head {
                "being answered"
            } else {
                "no complete request yet"
            },
            last.total,
        );
        self.pending = 0;
        self.written = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_victim_is_the_oldest_idle_else_the_oldest() {
        let pick = |slots: &[(u64, bool, bool)]| victim(slots.iter().copied());
        assert_eq!(pick(&[]), None);
        assert_eq!(
            pick(&[(1, true, false), (2, false, false), (3, false, false)]),
            Some(2)
        );
        assert_eq!(pick(&[(1, false, false), (2, true, false)]), Some(1));
        assert_eq!(pick(&[(4, true, false), (9, true, false)]), Some(4));
        // A connection whose request waits unread is passed over while an
        // idle one is left, and taken only when every other one has a
        // complete head.
        assert_eq!(
            pick(&[(1, false, true), (2, false, false), (3, true, false)]),
            Some(2)
        );
        assert_eq!(pick(&[(1, false, true), (3, true, false)]), Some(1));
    }
}
