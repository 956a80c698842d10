//! Request budget shared with other installs.
//!
//! WHOOP's rate limits belong to the developer app, so every install of VitalTrends spends from
//! one quota. A [`Budget`] (in service mode, the relay's quota coordinator) is asked before each
//! request and answers when this install may send it; requests that keep the person's data live
//! go first, old history last. Without a budget the client paces itself from WHOOP's headers.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How much a request matters to the person, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Fetching a record a webhook announced: what keeps the dashboard live.
    Live,
    /// The last 30 days (an import's first pages, catch-up, Force Sync, sign-in).
    Recent,
    /// The rest of the last six months.
    Months,
    /// Anything older.
    History,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Live,
        Priority::Recent,
        Priority::Months,
        Priority::History,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Live => "live",
            Priority::Recent => "recent",
            Priority::Months => "months",
            Priority::History => "history",
        }
    }
}

pub type BudgetFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Permission to send WHOOP requests.
pub trait Budget: Send + Sync {
    /// Resolves when one request of `priority` may be sent. An error (e.g. `RateLimited` after a
    /// long queue) is returned to the caller as the request's own; a budget that cannot reach
    /// its coordinator should resolve and let the client pace itself by WHOOP's headers.
    fn spend(&self, priority: Priority) -> BudgetFuture<'_>;
}
