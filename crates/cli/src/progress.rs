//! How `vitaltrends sync` shows a running job: on a terminal one live progress bar, redrawn in
//! place; elsewhere (a pipe, cron, a log file) one line when a phase begins, so a log reads as a
//! story rather than a line per page.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use sync::{EngineEvent, JobKind, Phase, Progress};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::task::JoinHandle;

/// The bar on screen, if any: other output goes above it rather than through it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints a line on stdout, above the progress bar when one is drawn.
pub fn println(text: &str) {
    match &*ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(bar) => bar.println(text),
        None => println!("{text}"),
    }
}

/// The progress display of one job; `finish` removes the bar before the summary is printed.
pub struct Display {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Display {
    /// For one job (`sync`): a bar on a terminal, phase lines elsewhere.
    pub fn start(events: Receiver<EngineEvent>) -> Display {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(6);
            bar.set_style(months_style());
            bar.set_prefix("syncing");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = bar.clone();
        let task = tokio::spawn(follow(events, bar.clone()));
        Display { task, bar }
    }

    /// For a long run with jobs coming and going (`run`): phase lines only.
    pub fn lines(events: Receiver<EngineEvent>) -> Display {
        Display {
            task: tokio::spawn(follow(events, None)),
            bar: None,
        }
    }

    pub fn finish(self) {
        self.task.abort();
        ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A bar with a label: "last 6 months [=====>    ] 3 of 6 months · 820 records".
fn months_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} [{bar:24}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn history_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

async fn follow(mut events: Receiver<EngineEvent>, bar: Option<ProgressBar>) {
    let mut last_phase: Option<Phase> = None;
    let mut said_queued = false;
    loop {
        match events.recv().await {
            Ok(EngineEvent::Progress(p)) => {
                match &bar {
                    Some(bar) => draw(bar, &p, last_phase),
                    None if last_phase != Some(p.phase) => println!("progress: {}", line(&p)),
                    None => {}
                }
                last_phase = Some(p.phase);
            }
            Ok(EngineEvent::RetryScheduled(retry)) => {
                println(&format!("{} ({})", retry.message, retry.job.as_str()));
            }
            // Once a run: while many people import, the wait comes and goes with every request.
            Ok(EngineEvent::QuotaWait { waiting: true }) if !said_queued => {
                said_queued = true;
                println(
                    "Queued: many people are importing right now; the newest days come first and \
                     the rest continues as it is your turn.",
                );
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

fn draw(bar: &ProgressBar, p: &Progress, last_phase: Option<Phase>) {
    if p.phase == Phase::History && last_phase != Some(Phase::History) {
        bar.set_style(history_style());
    }
    match (p.job, p.phase) {
        (JobKind::Import, Phase::Recent) => {
            bar.set_prefix("last 6 months");
            bar.set_length(u64::from(p.recent_windows_total.max(1)));
            bar.set_position(u64::from(p.recent_windows_done));
            bar.set_message(format!(
                "{} of {} months · {} records",
                p.recent_windows_done, p.recent_windows_total, p.records
            ));
        }
        (JobKind::Import, Phase::History) => bar.set_message(line(p)),
        // Force Sync and catch-up: how far through their parts, in percent.
        (job, _) => {
            bar.set_prefix(job_label(job));
            bar.set_length(100);
            bar.set_position(u64::from(p.percent.unwrap_or(0)));
            bar.set_message(format!("{}%", p.percent.unwrap_or(0)));
        }
    }
}

fn job_label(job: JobKind) -> &'static str {
    match job {
        JobKind::Import => "import",
        JobKind::ForceSync => "Force Sync",
        JobKind::CatchUp => "catch-up",
        JobKind::Refetch => "re-fetch",
    }
}

/// The phase in words: "last 6 months · 0 of 6 months done · 120 records", "history: back to
/// March 2024 · 2400 records".
fn line(p: &Progress) -> String {
    if p.job != JobKind::Import {
        return format!("{} · {} records", job_label(p.job), p.records);
    }
    match p.phase {
        Phase::Recent => format!(
            "last 6 months · {} of {} months done · {} records",
            p.recent_windows_done, p.recent_windows_total, p.records
        ),
        Phase::History => match p.oldest_day {
            Some(day) => format!(
                "history: back to {} · {} records",
                day.format("%B %Y"),
                p.records
            ),
            None => format!("history · {} records", p.records),
        },
    }
}
