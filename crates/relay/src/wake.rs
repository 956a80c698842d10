//! Wake-ups for open streams. The table is the truth; these only say "read it now" so events
//! reach devices in milliseconds instead of at the next poll. Intake on this node wakes streams
//! directly; on PostgreSQL a LISTEN task turns other nodes' NOTIFYs into the same wake-ups; and
//! one backstop task per node reads the log's tail now and then for anything no wake-up announced.
//!
//! Wake-ups are addressed per user: each user with an open stream has a `watch` channel, so a
//! webhook for one member wakes only that member's streams and an idle stream costs nothing when
//! other members' events arrive. A `watch` receiver remembers whether it has seen the latest
//! send, so a wake-up between two reads is never lost and never piles up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use crate::storage::{Storage, NOTIFY_CHANNEL};

#[derive(Debug)]
struct Inner {
    /// One sender per user with at least one open stream; removed with the last one.
    users: Mutex<HashMap<i64, watch::Sender<()>>>,
    /// Wake-ups may have been lost (the LISTEN connection dropped): everyone re-reads.
    all: watch::Sender<()>,
}

#[derive(Debug, Clone)]
pub struct Waker {
    inner: Arc<Inner>,
}

impl Default for Waker {
    fn default() -> Self {
        Waker {
            inner: Arc::new(Inner {
                users: Mutex::new(HashMap::new()),
                all: watch::channel(()).0,
            }),
        }
    }
}

impl Waker {
    /// Wakes the streams of one user; nothing happens if the user has none open.
    pub fn wake_user(&self, user_id: i64) {
        let users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = users.get(&user_id) {
            tx.send_replace(());
        }
    }

    /// Wakes every stream on this node.
    pub fn wake_all(&self) {
        self.inner.all.send_replace(());
    }

    /// Wake-ups for one user's stream, from now on (subscribe before the first read).
    pub fn subscribe(&self, user_id: i64) -> Wakes {
        let user = {
            let mut users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
            users
                .entry(user_id)
                .or_insert_with(|| watch::channel(()).0)
                .subscribe()
        };
        Wakes {
            user_id,
            inner: Arc::clone(&self.inner),
            user: Some(user),
            all: self.inner.all.subscribe(),
        }
    }

    /// How many users have streams registered here (for tests of the clean-up).
    #[cfg(test)]
    fn users(&self) -> usize {
        self.inner
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// One stream's wake-ups; unregisters the user with its last stream.
pub struct Wakes {
    user_id: i64,
    inner: Arc<Inner>,
    /// Always `Some` until dropped (taken out first so the count below excludes it).
    user: Option<watch::Receiver<()>>,
    all: watch::Receiver<()>,
}

impl Wakes {
    /// Resolves at the next wake-up for this user (or for everyone) not yet seen.
    pub async fn woken(&mut self) {
        let Some(user) = self.user.as_mut() else {
            return std::future::pending().await;
        };
        // Neither sender goes away while a receiver holds `inner`, so neither errs.
        tokio::select! {
            _ = user.changed() => {}
            _ = self.all.changed() => {}
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        drop(self.user.take());
        let mut users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        if users
            .get(&self.user_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}

/// The backstop: every `period`, one read of the log's tail wakes the users whose log grew
/// since the last look, covering a NOTIFY lost without the connection dropping (or a writer
/// that is not this node). One query per period for the whole node, not one per open stream.
pub async fn tail(storage: Storage, waker: Waker, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<i64> = None;
    loop {
        tick.tick().await;
        // The first look only fixes where the tail starts: streams read when they open.
        let after = seen.unwrap_or(i64::MAX);
        match storage.users_after(after).await {
            Ok((head, users)) => {
                for user_id in users {
                    waker.wake_user(user_id);
                }
                // Seqs are never reused, so the tail only moves forward (retention may empty
                // the table, making the head read 0).
                seen = Some(seen.map_or(head, |s| s.max(head)));
            }
            Err(err) => tracing::warn!(error = %err, "backstop read of the log failed"),
        }
    }
}

/// Forwards NOTIFYs from every node (this one included) until the task is aborted.
pub async fn listen(pool: PgPool, waker: Waker) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "LISTEN connection failed; streams fall back to polling");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if let Err(err) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(error = %err, "LISTEN failed; streams fall back to polling");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        tracing::debug!("listening for events from other nodes");
        // Anything committed while not listening would otherwise wait for the poll backstop.
        waker.wake_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match n.payload().parse::<i64>() {
                    Ok(user_id) => waker.wake_user(user_id),
                    Err(_) => waker.wake_all(),
                },
                Ok(None) => {
                    // The connection dropped; try_recv reconnects on the next call.
                    tracing::debug!("LISTEN connection lost; reconnecting");
                    waker.wake_all();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; reconnecting");
                    waker.wake_all();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    /// Whether the stream has an unseen wake-up right now (polls once, never waits).
    fn is_woken(wakes: &mut Wakes) -> bool {
        let mut fut = pin!(wakes.woken());
        let waker = futures_util::task::noop_waker();
        matches!(
            fut.as_mut().poll(&mut Context::from_waker(&waker)),
            Poll::Ready(())
        )
    }

    #[tokio::test]
    async fn a_wake_up_reaches_only_its_users_streams_and_is_not_lost() {
        let waker = Waker::default();
        let mut a1 = waker.subscribe(1);
        let mut a2 = waker.subscribe(1);
        let mut b = waker.subscribe(2);
        assert!(!is_woken(&mut a1) && !is_woken(&mut b));
        // Sent while nobody waits: each of the user's streams still sees it, once.
        waker.wake_user(1);
        waker.wake_user(1);
        assert!(is_woken(&mut a1));
        assert!(
            !is_woken(&mut a1),
            "two wake-ups before a read are one read"
        );
        assert!(is_woken(&mut a2));
        assert!(
            !is_woken(&mut b),
            "another member's webhook woke this stream"
        );
        // Someone without streams: nobody is woken, nothing is kept.
        waker.wake_user(3);
        assert!(!is_woken(&mut a1) && !is_woken(&mut b));
        waker.wake_all();
        assert!(is_woken(&mut a1) && is_woken(&mut a2) && is_woken(&mut b));
    }

    #[tokio::test]
    async fn users_are_forgotten_with_their_last_stream() {
        let waker = Waker::default();
        let a1 = waker.subscribe(1);
        let a2 = waker.subscribe(1);
        let b = waker.subscribe(2);
        assert_eq!(waker.users(), 2);
        drop(a1);
        assert_eq!(waker.users(), 2);
        drop(a2);
        drop(b);
        assert_eq!(waker.users(), 0);
        // A new stream after that starts afresh and hears the next wake-up.
        let mut again = waker.subscribe(1);
        waker.wake_user(1);
        assert!(is_woken(&mut again));
    }
}
