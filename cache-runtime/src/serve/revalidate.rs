//! Stale while revalidating: the request that finds an expired entry within `stale` is answered
//! with it at once, and refreshes it after the reply.
//!
//! The handler borrows the request, so the refresh cannot be a task of its own: it runs as the
//! tail of the stale reply's body ([`Revalidating`]), which Rocket's task for the request polls
//! to its end. The body hands over the stored bytes, then runs the refresh (handler, store,
//! leases back, this process's waiters told), then ends. The reply carries its
//! `Content-Length`, and HTTP/1.1 (hyper's dispatcher) completes a response once that many bytes
//! are written, without waiting for the body to end: the client has the whole reply, and may
//! send its next request on the connection, while the refresh runs. Over HTTP/2 the bytes also
//! go out at once, but the stream's end (`END_STREAM`) is sent only when the body ends, after
//! the refresh: a client that waits for it waits as long as before.
//!
//! A 304 (the client has the entry) refreshes before replying: Rocket never reads its body.
//! A HEAD request cannot do the same: Rocket answers it by running the GET route with the
//! request's method changed to GET, so the handler cannot tell, and Rocket then drops the body
//! unread. Like a client that leaves before the body's last byte is handed over, it takes the
//! refresh with it: the flow's leases go back, its waiters are told, and a later GET
//! refreshes.

use std::future::Future;
use std::io::{self, Cursor, SeekFrom};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rocket::http::Status;
use rocket::response;
use rocket::tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use rocket::Request;

use super::{
    lease_secs, outcome_of, stored_validators, unchanged, unix_now, Flow, Reply, Run, Source,
};
use crate::backend::{Found, Read};
use crate::entry::StoredResponse;
use crate::flight::{Leader, Role};
use crate::outcome::Served;
use crate::route::validators;

/// The flight a stale reply leads while its body drains, given up after a bound.
///
/// The refresh runs only once the client has taken the reply's bytes, and a client decides
/// when: over HTTP/2, one that opens its stream with a zero flow-control window (and never
/// sends `WINDOW_UPDATE`) is never sent a byte, so the body is never read past its start. The
/// flight must not wait on it: after `lease_wait` (at least a second), the most any request
/// waits for another's recomputation, a task drops the leadership, and the next request that
/// finds the entry stale leads its own refresh. The stalled reply, if it drains later, refreshes
/// only when no other request leads the key's flight by then.
struct Leading {
    leader: Arc<Mutex<Option<Leader>>>,
    expiry: Option<tokio::task::JoinHandle<()>>,
}

impl Leading {
    /// Holds `leader` for at most `bound`.
    fn until(leader: Leader, bound: Duration) -> Leading {
        let leader = Arc::new(Mutex::new(Some(leader)));
        let held = Arc::clone(&leader);
        let expiry = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime.spawn(async move {
                tokio::time::sleep(bound).await;
                drop(held.lock().unwrap_or_else(|e| e.into_inner()).take());
            })
        });
        Leading { leader, expiry }
    }

    /// Returns the leadership, unless the bound took it first.
    fn take(&self) -> Option<Leader> {
        if let Some(expiry) = &self.expiry {
            expiry.abort();
        }
        self.leader.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for Leading {
    /// Gives the leadership up at once when the refresh will never run (the client left, or
    /// a HEAD request's body was dropped unread).
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The refresh, run by whoever polls the stale reply's body.
type Refresh<'r> = Pin<Box<dyn Future<Output = ()> + Send + 'r>>;

/// A stale reply's body: the stored bytes, then the refresh, then the end.
pub(super) struct Revalidating<'r> {
    body: Cursor<Bytes>,
    refresh: Option<Refresh<'r>>,
}

impl AsyncRead for Revalidating<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Every stored byte first: the refresh never delays the client's reply.
        if this.body.position() < this.body.get_ref().len() as u64 {
            return Pin::new(&mut this.body).poll_read(cx, buf);
        }
        if let Some(refresh) = this.refresh.as_mut() {
            ready!(refresh.as_mut().poll(cx));
            this.refresh = None;
        }
        Poll::Ready(Ok(()))
    }
}

// Rocket wants a sized body to be seekable; it seeks only to measure a body whose size was not
// given, and this one's is.
impl AsyncSeek for Revalidating<'_> {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.body).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.body).poll_complete(cx)
    }
}

impl<'r> Flow<'r> {
    /// Answers with the expired `entry` and refreshes it after the reply's body (or before a
    /// 304).
    pub(super) async fn revalidate<'o: 'r, R>(
        mut self,
        entry: Arc<StoredResponse>,
        run: Run,
        leader: Leader,
        handler: impl Future<Output = R> + Send + 'r,
        respond: impl FnOnce(R, &'r Request<'r>) -> response::Result<'o> + Send + 'r,
    ) -> Reply<'r> {
        let request = self.request;
        let served = self.serve_entry(&entry, unix_now(), Served::Stale, Source::Cache);
        let revalidated = Arc::clone(&entry);
        // At least a second: a `lease_wait` of zero must not leave every refresh behind.
        let bound = self.cache.config().lease_wait.max(Duration::from_secs(1));
        let leading = Leading::until(leader, bound);
        let refresh = async move {
            // A reply that took longer than `lease_wait` to drain lost the flight: another
            // request refreshes (or already did).
            // A reply slower to drain than the bound gave the flight up; it leads again when no
            // other request took it meanwhile (a large page on a slow link still refreshes).
            let leader = match leading.take() {
                Some(leader) => leader,
                None => match self.cache.flights().join(self.key()) {
                    Role::Leader(leader) => leader,
                    Role::Follower(_) => {
                        self.leases.finish(false).await;
                        return;
                    }
                },
            };
            // The lease is taken here, after the reply, so the stale answer costs what a hit
            // does; another instance holding it refreshes instead.
            let secs = lease_secs(self.cache.config());
            if !Box::pin(self.leases.take_companion(secs)).await
                || Box::pin(self.refreshed_elsewhere(&revalidated)).await
            {
                self.leases.finish(false).await;
                return;
            }
            if let Some(entry) = &run.revalidates {
                validators::revalidating(request, stored_validators(entry));
            }
            let outcome = outcome_of(request, &run, handler.await, respond);
            self.refreshed(run, leader, outcome).await;
        };
        // A bare 304, or a stored failure for Rocket's catcher: no body of ours is read, so
        // the refresh runs before the reply.
        let mut response = match served {
            Ok(response) if response.status() != Status::NotModified => response,
            other => {
                refresh.await;
                return other;
            }
        };
        let body = Revalidating {
            body: Cursor::new(entry.body_bytes()),
            refresh: Some(Box::pin(refresh)),
        };
        response.set_sized_body(entry.body().len(), body);
        Ok(response)
    }

    /// Returns whether the store holds a newer rendering than `entry` already: another request
    /// (of this instance or another) refreshed it between this request's lookup and its lease,
    /// which it won once that refresher gave it back. Refreshing again would run the handler
    /// twice for one expiry.
    async fn refreshed_elsewhere(&self, entry: &StoredResponse) -> bool {
        let stored = match self.cache.store().read(self.key()).await {
            Ok(Read::Current(stored)) | Ok(Read::Check(Found::Entry(stored, ..), _)) => stored,
            _ => return false,
        };
        stored.created() > entry.created()
            || stored.generation().fingerprint != entry.generation().fingerprint
    }

    /// Ends the refresh: the response stored when it may be, this process's waiters told, the
    /// leases given back. The client has its answer already.
    async fn refreshed(mut self, run: Run, leader: Leader, outcome: Reply<'r>) {
        if let (Some(stored), Some(updates)) = (&run.revalidates, unchanged(&outcome)) {
            let stored = Arc::clone(stored);
            let _ = self
                .keep_revalidated(run, Some(leader), &stored, &updates)
                .await;
            return;
        }
        let mut response = match outcome {
            Ok(response) => response,
            // Stored for its catcher when listed, like a miss's failure.
            Err(status) => {
                let _ = self.hand_to_catcher(run, Some(leader), status).await;
                return;
            }
        };
        match self.store(&run, &mut response).await {
            Ok(stored) => {
                let status = response.status().code;
                self.settle(&run, Some(leader), &stored, status).await;
            }
            Err(_) => self.leases.finish(false).await,
        }
    }
}
