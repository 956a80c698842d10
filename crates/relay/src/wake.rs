//! Wake-ups for open streams. The table is the truth; these only say "read it now" so events
//! reach devices in milliseconds instead of at the next poll. Intake on this node wakes streams
//! directly; on PostgreSQL a LISTEN task turns other nodes' NOTIFYs into the same wake-ups.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;

use crate::storage::NOTIFY_CHANNEL;

/// Which streams should re-read the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    User(i64),
    /// Wake-ups may have been lost (the LISTEN connection dropped): everyone re-reads.
    All,
}

impl Wake {
    pub fn concerns(self, user_id: i64) -> bool {
        match self {
            Wake::User(u) => u == user_id,
            Wake::All => true,
        }
    }
}

/// Enough for a burst; a stream that falls behind sees `Lagged` and simply re-reads.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub struct Waker {
    tx: broadcast::Sender<Wake>,
}

impl Default for Waker {
    fn default() -> Self {
        Waker {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Waker {
    pub fn wake(&self, wake: Wake) {
        // No receivers just means no open streams.
        let _ = self.tx.send(wake);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.tx.subscribe()
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
        waker.wake(Wake::All);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match n.payload().parse::<i64>() {
                    Ok(user_id) => waker.wake(Wake::User(user_id)),
                    Err(_) => waker.wake(Wake::All),
                },
                Ok(None) => {
                    // The connection dropped; try_recv reconnects on the next call.
                    tracing::debug!("LISTEN connection lost; reconnecting");
                    waker.wake(Wake::All);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; reconnecting");
                    waker.wake(Wake::All);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
