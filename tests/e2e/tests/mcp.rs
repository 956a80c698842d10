//! `vitaltrends mcp` driven by a real MCP client, the official Python SDK, over stdio: the
//! session initializes, every tool is listed read-only and answers with structured content that
//! matches its output schema (the SDK checks), and the answers agree with what WHOOP (the
//! simulator) holds for a history with pending and unscorable scores, naps and several time
//! zones. Then the same while `vitaltrends sync` is importing into the same file.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use e2e::{Cli, SimProcess};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

const TOOLS: [&str; 8] = [
    "get_today",
    "get_metric_series",
    "summarize_period",
    "compare_periods",
    "correlate",
    "list_workouts",
    "get_sleep",
    "data_status",
];

/// Runs the Python client against `vitaltrends mcp` in `cli`'s data directory.
async fn mcp_session(cli: &Cli, calls: &Value, repeat: u32, pause_s: f64) -> Value {
    let job = json!({
        "command": e2e::binary("vitaltrends"),
        "args": ["mcp"],
        "env": {
            "PATH": std::env::var("PATH").unwrap_or_default(),
            "VITALTRENDS_DATA_DIR": cli.data_dir.path(),
            "VITALTRENDS_CONFIG_DIR": cli.data_dir.path().join("config"),
            "RUST_LOG": "info",
        },
        "calls": calls,
        "repeat": repeat,
        "pause_s": pause_s,
    });
    e2e::python_script("mcp_client.py", &job, 5 * MINUTE).await
}

fn day_of(v: &Value) -> NaiveDate {
    v.as_str().unwrap().parse().unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// WHOOP's truth, from the simulator's dump, in the shape the tools answer in.
struct Truth {
    /// cycle id → (local WHOOP day, start)
    cycles: BTreeMap<i64, (NaiveDate, DateTime<Utc>)>,
    /// day → recovery score of scored recoveries
    recovery: BTreeMap<NaiveDate, f64>,
    /// day → day strain of scored cycles
    strain: BTreeMap<NaiveDate, f64>,
    /// day → id of the main sleep
    main_sleep: BTreeMap<NaiveDate, String>,
    naps: u64,
    workouts: Vec<Value>,
    offsets: BTreeSet<String>,
    states: BTreeMap<(String, String), u64>,
    dump: Value,
}

impl Truth {
    fn of(dump: Value) -> Truth {
        let mut t = Truth {
            cycles: BTreeMap::new(),
            recovery: BTreeMap::new(),
            strain: BTreeMap::new(),
            main_sleep: BTreeMap::new(),
            naps: 0,
            workouts: dump["workout"].as_array().unwrap().clone(),
            offsets: BTreeSet::new(),
            states: BTreeMap::new(),
            dump: Value::Null,
        };
        for c in dump["cycle"].as_array().unwrap() {
            let offset = c["timezone_offset"].as_str().unwrap();
            let start = time(&c["start"]);
            let day = store::day::cycle_day(start, offset);
            t.offsets.insert(offset.to_string());
            t.cycles.insert(c["id"].as_i64().unwrap(), (day, start));
            if c["score_state"] == "SCORED" {
                t.strain.insert(day, c["score"]["strain"].as_f64().unwrap());
            }
        }
        for collection in ["cycle", "sleep", "recovery", "workout"] {
            for r in dump[collection].as_array().unwrap() {
                let state = r["score_state"].as_str().unwrap().to_string();
                *t.states.entry((collection.into(), state)).or_default() += 1;
            }
        }
        for r in dump["recovery"].as_array().unwrap() {
            if r["score_state"] == "SCORED" {
                let (day, _) = t.cycles[&r["cycle_id"].as_i64().unwrap()];
                t.recovery
                    .insert(day, r["score"]["recovery_score"].as_f64().unwrap());
            }
        }
        for s in dump["sleep"].as_array().unwrap() {
            if s["nap"].as_bool().unwrap_or(false) {
                t.naps += 1;
            } else {
                let (day, _) = t.cycles[&s["cycle_id"].as_i64().unwrap()];
                t.main_sleep
                    .insert(day, s["id"].as_str().unwrap().to_string());
            }
        }
        t.dump = dump;
        t
    }

    fn newest_cycle(&self) -> (i64, NaiveDate) {
        let (id, (day, _)) = self
            .cycles
            .iter()
            .max_by_key(|(_, (_, start))| *start)
            .unwrap();
        (*id, *day)
    }

    fn state_count(&self, collection: &str, state: &str) -> u64 {
        self.states
            .get(&(collection.to_string(), state.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn answer<'a>(round: &'a Value, name: &str) -> &'a Value {
    let a = round
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no answer from {name}"));
    assert_eq!(a["is_error"], false, "{name} failed: {}", a["text"]);
    &a["structured"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_answers_what_whoop_holds() {
    let sim = SimProcess::start(&["--days", "120", "--seed", "12", "--auto-approve"]).await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    let synced = cli.run(&["sync"], 5 * MINUTE).await;
    assert!(synced.status.success(), "sync failed: {}", synced.stderr);
    let truth = Truth::of(sim.get_json("/_sim/dump").await);

    // The history has what the tools must handle, or this test would prove little.
    assert!(truth.naps > 0, "the history has no naps");
    assert!(
        truth.offsets.len() > 1,
        "one time zone only: {:?}",
        truth.offsets
    );
    assert!(
        truth.state_count("sleep", "UNSCORABLE") + truth.state_count("recovery", "UNSCORABLE") > 0
    );
    let (newest_id, newest_day) = truth.newest_cycle();
    let newest_recovery_scored = truth.dump["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["cycle_id"] == newest_id && r["score_state"] == "SCORED");
    assert!(
        !newest_recovery_scored,
        "the newest night should still be pending"
    );

    let (&first_day, _) = truth.recovery.iter().next().unwrap();
    let sleep_day = *truth.main_sleep.keys().nth(40).unwrap();
    let sport = truth.workouts[0]["sport_name"]
        .as_str()
        .unwrap()
        .to_string();
    let a = (
        newest_day - chrono::Duration::days(27),
        newest_day - chrono::Duration::days(14),
    );
    let b = (newest_day - chrono::Duration::days(13), newest_day);
    let calls = json!([
        {"name": "get_today"},
        {"name": "get_metric_series", "arguments": {"metric": "recovery", "range": "all", "rolling_days": 7}},
        {"name": "get_metric_series", "arguments": {"metric": "day_strain", "from": first_day.to_string(), "to": newest_day.to_string()}},
        {"name": "summarize_period", "arguments": {"metric": "recovery", "range": "30d"}},
        {"name": "compare_periods", "arguments": {"metric": "recovery", "a_from": a.0.to_string(), "a_to": a.1.to_string(), "b_from": b.0.to_string(), "b_to": b.1.to_string()}},
        {"name": "correlate", "arguments": {"x": "day_strain", "y": "recovery", "lag_days": 1, "range": "all"}},
        {"name": "list_workouts", "arguments": {"limit": 1000}},
        {"name": "list_workouts", "arguments": {"sport": sport.to_uppercase().replace(' ', "-"), "limit": 1000}},
        {"name": "get_sleep", "arguments": {"day": sleep_day.to_string()}},
        {"name": "data_status"},
        {"name": "get_metric_series", "arguments": {"metric": "hrv", "from": "2025-02-10", "to": "2025-02-01"}},
    ]);
    let session = mcp_session(&cli, &calls, 1, 0.0).await;

    eprintln!(
        "MCP protocol {}, {} tools",
        session["protocol"],
        session["tools"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(session["server"], "vitaltrends");
    let tools: BTreeMap<&str, &Value> = session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    assert_eq!(
        tools.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(TOOLS)
    );
    for (name, tool) in &tools {
        assert_eq!(tool["read_only"], true, "{name} is not annotated read-only");
        assert!(
            tool["output_schema"].is_object(),
            "{name} has no output schema"
        );
    }
    assert!(session["resources"]["vitaltrends://data-model"]
        .as_str()
        .unwrap()
        .contains("WHOOP day"));
    let profile: Value = serde_json::from_str(
        session["resources"]["vitaltrends://profile"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(profile["user_id"], truth.dump["profile"]["user_id"]);
    assert!(session["prompts"]["weekly_review"]
        .as_str()
        .unwrap()
        .contains("summarize_period"));
    assert!(session["prompts"]
        .as_object()
        .unwrap()
        .contains_key("why_is_my_recovery_low"));

    let round = &session["rounds"][0];

    // Today: the newest cycle's day, its recovery pending rather than zero.
    let today = answer(round, "get_today");
    assert_eq!(day_of(&today["day"]), newest_day);
    assert_eq!(today["recovery"]["pending"], true);
    assert!(today["recovery"]["value"].is_null());
    assert!(today["recovery"]["baseline_30d"].is_number());

    // Recovery over all days: exactly WHOOP's scored recoveries, one per local day; the
    // rolling average over 7 calendar days from the same values.
    let series = answer(round, "get_metric_series");
    let points = series["points"].as_array().unwrap();
    let got: BTreeMap<NaiveDate, f64> = points
        .iter()
        .map(|p| (day_of(&p["day"]), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(got, truth.recovery);
    for p in points {
        let day = day_of(&p["day"]);
        let window: Vec<f64> = truth
            .recovery
            .range(day - chrono::Duration::days(6)..=day)
            .map(|(_, v)| *v)
            .collect();
        let want = window.iter().sum::<f64>() / window.len() as f64;
        assert!(
            close(p["rolling"].as_f64().unwrap(), want),
            "rolling on {day}"
        );
    }

    // Day strain by explicit days.
    let strain_answer = &round[2]["structured"];
    let strain: BTreeMap<NaiveDate, f64> = strain_answer["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (day_of(&p["day"]), p["value"].as_f64().unwrap()))
        .collect();
    let want_strain: BTreeMap<NaiveDate, f64> = truth
        .strain
        .range(first_day..=newest_day)
        .map(|(d, v)| (*d, *v))
        .collect();
    assert_eq!(strain, want_strain);

    // Summary of the last 30 days against the 30 before.
    let summary = answer(round, "summarize_period");
    let from = newest_day - chrono::Duration::days(29);
    assert_eq!(day_of(&summary["from"]), from);
    let last30: Vec<(NaiveDate, f64)> = truth
        .recovery
        .range(from..=newest_day)
        .map(|(d, v)| (*d, *v))
        .collect();
    let prev30: Vec<f64> = truth
        .recovery
        .range(from - chrono::Duration::days(30)..from)
        .map(|(_, v)| *v)
        .collect();
    let m = &summary["metrics"][0];
    assert_eq!(m["stats"]["n"], last30.len());
    let mean = last30.iter().map(|v| v.1).sum::<f64>() / last30.len() as f64;
    let prev_mean = prev30.iter().sum::<f64>() / prev30.len() as f64;
    assert!(close(m["stats"]["mean"].as_f64().unwrap(), mean));
    assert!(close(m["change"].as_f64().unwrap(), mean - prev_mean));
    let best = last30.iter().map(|v| v.1).fold(f64::MIN, f64::max);
    assert!(close(m["best"]["value"].as_f64().unwrap(), best));

    // Two fortnights.
    let compared = answer(round, "compare_periods");
    let mean_of = |(f, t): (NaiveDate, NaiveDate)| {
        let v: Vec<f64> = truth.recovery.range(f..=t).map(|(_, v)| *v).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(close(
        compared["metrics"][0]["difference"].as_f64().unwrap(),
        mean_of(b) - mean_of(a)
    ));

    // Day strain vs next-day recovery.
    let corr = answer(round, "correlate");
    let pairs: Vec<(f64, f64)> = truth
        .strain
        .iter()
        .filter_map(|(d, s)| Some((*s, *truth.recovery.get(&(*d + chrono::Duration::days(1)))?)))
        .collect();
    assert_eq!(corr["n"], pairs.len());
    assert!(close(corr["r"].as_f64().unwrap(), pearson(&pairs)));

    // Workouts: all of them, and one sport however it is spelled.
    let all = answer(round, "list_workouts");
    assert_eq!(all["count"], truth.workouts.len());
    let one_sport = &round[7]["structured"];
    let normalise = |s: &str| s.to_lowercase().replace(['-', '_'], " ");
    let want = truth
        .workouts
        .iter()
        .filter(|w| normalise(w["sport_name"].as_str().unwrap()) == normalise(&sport))
        .count();
    assert_eq!(one_sport["count"], want);
    assert!(want > 0);

    // One night: the main sleep WHOOP has for that day, with its stages; that day's naps.
    let night = answer(round, "get_sleep");
    assert_eq!(night["main"]["id"], truth.main_sleep[&sleep_day].as_str());
    let naps_that_day = truth.dump["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["nap"] == true
                && store::day::local_date(time(&s["start"]), s["timezone_offset"].as_str().unwrap())
                    == sleep_day
        })
        .count();
    assert_eq!(night["naps"].as_array().unwrap().len(), naps_that_day);

    // Data status: counts per score state, naps, days.
    let status = answer(round, "data_status");
    for (collection, key) in [
        ("cycle", "cycles"),
        ("sleep", "sleeps"),
        ("recovery", "recoveries"),
        ("workout", "workouts"),
    ] {
        assert_eq!(
            status[key]["pending"],
            truth.state_count(collection, "PENDING_SCORE"),
            "{key}"
        );
        assert_eq!(
            status[key]["unscorable"],
            truth.state_count(collection, "UNSCORABLE"),
            "{key}"
        );
        assert_eq!(
            status[key]["scored"],
            truth.state_count(collection, "SCORED"),
            "{key}"
        );
    }
    assert_eq!(status["naps"], truth.naps);
    assert_eq!(status["import_complete"], true);
    assert_eq!(status["connection_state"], "connected");
    assert!(status["hours_since_newest_record"].as_f64().unwrap() < 48.0);

    // Bad input: a clear error the assistant can read, not a crash.
    let bad = &round[10];
    assert_eq!(bad["is_error"], true);
    assert!(
        bad["text"].as_str().unwrap().contains("is after"),
        "{}",
        bad["text"]
    );

    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_while_an_import_writes() {
    let sim = SimProcess::start(&[
        "--days",
        "1500",
        "--seed",
        "5",
        "--auto-approve",
        // Pages arrive steadily (no rate-limit pauses), so the reads below land mid-import.
        "--rate-limit-minute",
        "100000",
        "--latency-ms",
        "150",
    ])
    .await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    // The database exists from connecting on; the import writes into it while MCP reads.
    let sync = cli
        .command()
        .arg("sync")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let calls = json!([
        {"name": "data_status"},
        {"name": "get_metric_series", "arguments": {"metric": "hrv", "range": "all"}},
        {"name": "summarize_period", "arguments": {"range": "1y"}},
        {"name": "list_workouts", "arguments": {"limit": 100}},
    ]);
    let session = mcp_session(&cli, &calls, 30, 1.0).await;
    let synced = tokio::time::timeout(5 * MINUTE, sync.wait_with_output())
        .await
        .expect("the import finishes")
        .unwrap();
    assert!(
        synced.status.success(),
        "the import failed while MCP read: {}",
        String::from_utf8_lossy(&synced.stderr)
    );
    // Every call answered (none blocked or failed on a lock), and what was seen only grew.
    let mut last = 0u64;
    let mut seen = Vec::new();
    for round in session["rounds"].as_array().unwrap() {
        let status = answer(round, "data_status");
        let records: u64 = ["cycles", "sleeps", "recoveries", "workouts"]
            .iter()
            .map(|k| {
                ["scored", "pending", "unscorable"]
                    .iter()
                    .map(|s| status[k][s].as_u64().unwrap())
                    .sum::<u64>()
            })
            .sum();
        assert!(records >= last, "records went from {last} to {records}");
        last = records;
        seen.push(records);
        for name in ["get_metric_series", "summarize_period", "list_workouts"] {
            answer(round, name);
        }
    }
    // After the import, the same questions see everything WHOOP has.
    let truth = Truth::of(sim.get_json("/_sim/dump").await);
    let after = mcp_session(&cli, &json!([{"name": "data_status"}]), 1, 0.0).await;
    let status = answer(&after["rounds"][0], "data_status");
    assert_eq!(
        status["cycles"]["scored"],
        truth.state_count("cycle", "SCORED")
    );
    assert_eq!(status["import_complete"], true);
    let total: u64 = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| truth.dump[c].as_array().unwrap().len() as u64)
        .sum();
    // The reads really overlapped the import: they saw the file before it was complete.
    eprintln!("records seen by successive rounds: {seen:?} of {total}");
    assert!(
        seen[0] < total,
        "the import had finished before MCP read: {seen:?}"
    );
    assert!(seen[0] < last, "no round saw the import progress: {seen:?}");
    sim.stop().await;
}
