//! Slowloris against the real `vitaltrends-relay` binary: under `ulimit -n 1024`, 1,100
//! connections that send half a request's headers and then nothing must not take the relay down.
//! `/healthz` answers again within 15 s of the attack starting (the header-read timeout frees the
//! held connections; the connection cap kept descriptors back for everything else), and the
//! relay's memory stays bounded. Then once more with the connection cap set above the descriptor
//! limit, so accepting runs into EMFILE: the relay pauses accepting instead of failing and
//! recovers the same way. Figures are printed for the notes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_vitaltrends-relay");
const ATTACKERS: usize = 1_100;
const RECOVERY_BUDGET: Duration = Duration::from_secs(15);
const RSS_CAP_KIB: u64 = 200 * 1024;
/// The whole test, attack and recovery included.
const TEST_BUDGET: Duration = Duration::from_secs(90);

/// This process needs a descriptor per attacking socket, more than a default 1,024 allows.
fn raise_own_fd_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed, on this stack.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur >= want {
            return;
        }
        assert!(
            limit.rlim_max >= want,
            "the hard open-file limit ({}) is below the {want} this test needs",
            limit.rlim_max
        );
        limit.rlim_cur = want;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// One `/healthz` on a fresh connection; `true` for a 200.
async fn healthz(addr: &str, within: Duration) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    matches!(tokio::time::timeout(within, attempt).await, Ok(Some(true)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_do_not_take_the_relay_down() {
    raise_own_fd_limit(4096);
    tokio::time::timeout(TEST_BUDGET, async {
        // The default cap: the open-file limit minus the relay's reserve.
        let stderr = attack("default cap", &[], false).await;
        assert!(!stderr.contains("out of file descriptors"), "{stderr}");
        // A cap the descriptors cannot honour: accept fails with EMFILE and must not stop.
        let stderr = attack(
            "cap above the fd limit",
            &["--max-connections", "4000"],
            true,
        )
        .await;
        assert!(
            stderr.contains("out of file descriptors; pausing accept"),
            "accept never ran out of descriptors:\n{stderr}"
        );
    })
    .await
    .expect("the slowloris test did not finish in time");
}

/// Attacks a fresh relay started with `args`; returns its stderr. With `expect_emfile`, the
/// recovery is measured only once the relay has logged running out of descriptors.
async fn attack(label: &str, args: &[&str], expect_emfile: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("relay.db").display());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$0" "$@""#)
        .arg(BINARY)
        .args(["--listen", "127.0.0.1:0", "--database-url", &db])
        .arg("--no-subscription-gate")
        .args(args)
        .env("VITALTRENDS_WHOOP_CLIENT_ID", "slowloris-test")
        .env("VITALTRENDS_WHOOP_CLIENT_SECRET", "slowloris-test-secret")
        .env("VITALTRENDS_WHOOP_BASE_URL", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the relay");
    let pid = child.id().expect("pid");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&stderr);
    let stderr_done = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_str(&text);
        }
    });
    let logged = |what: &str| {
        stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(what)
    };
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("ready line in time")
        .expect("stdout")
        .expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("JSON ready line");
    let base = ready["base_url"].as_str().expect("base_url").to_string();
    let addr = base.trim_start_matches("http://").to_string();
    assert!(
        healthz(&addr, Duration::from_secs(5)).await,
        "healthy before"
    );
    let limit = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(
        limit
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "the relay runs under ulimit -n 1024:\n{limit}"
    );
    let rss_before = status_kib(pid, "VmRSS");

    // The attack: connect, send part of the headers, never finish, never close.
    let started = Instant::now();
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..ATTACKERS {
        let addr = addr.clone();
        connecting.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.ok()?;
            let partial = format!("GET /healthz?{i} HTTP/1.1\r\nHost: relay\r\nX-Slow: ");
            s.write_all(partial.as_bytes()).await.ok()?;
            Some(s)
        });
    }
    let mut held = Vec::with_capacity(ATTACKERS);
    while let Some(joined) = connecting.join_next().await {
        if let Ok(Some(s)) = joined {
            held.push(s);
        }
    }
    let connected = held.len();
    let connect_time = started.elapsed();
    if expect_emfile {
        // Only probe once accepting has actually run out of descriptors.
        while !logged("out of file descriptors") && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            logged("out of file descriptors; pausing accept"),
            "accept never ran out of descriptors"
        );
    }

    // Ask until it answers; each try waits up to 3 s (a queued connection is accepted late).
    let mut recovered = None;
    let mut peak_rss = status_kib(pid, "VmRSS");
    while started.elapsed() < RECOVERY_BUDGET + Duration::from_secs(5) {
        if healthz(&addr, Duration::from_secs(3)).await {
            recovered = Some(started.elapsed());
            break;
        }
        peak_rss = peak_rss.max(status_kib(pid, "VmRSS"));
    }
    peak_rss = peak_rss.max(status_kib(pid, "VmRSS"));
    let fds_during = open_files(pid);
    // How many attackers the relay has cut off. /healthz can answer before the header-read
    // timeout fires (under load the kernel drops some attackers' handshakes, so fewer reach the
    // cap), so look again until the timeout has had its chance.
    let mut closed = 0;
    loop {
        for s in &mut held {
            let mut buf = [0u8; 64];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await
            {
                closed += 1;
            }
        }
        if closed > 0 || started.elapsed() >= RECOVERY_BUDGET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hwm = status_kib(pid, "VmHWM");
    let alive = child.try_wait().expect("wait").is_none();
    println!(
        "slowloris ({label}): {connected} of {ATTACKERS} half-open connections held (opened in {:.1} s); \
         /healthz answered again after {}; relay RSS {:.1} MiB before, {:.1} MiB peak sampled, \
         VmHWM {:.1} MiB; relay descriptors {fds_during}; {closed} attackers cut off by then",
        connect_time.as_secs_f64(),
        recovered
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into()),
        rss_before as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    assert!(alive, "the relay died under the attack");
    assert!(
        connected >= 1_000,
        "only {connected} attacking connections opened; the test did not attack"
    );
    let recovered = recovered.expect("/healthz never answered during the attack");
    assert!(
        recovered <= RECOVERY_BUDGET,
        "/healthz answered only after {recovered:?}"
    );
    assert!(hwm < RSS_CAP_KIB, "relay peak RSS {hwm} KiB");
    assert!(closed > 0, "the header-read timeout cut nobody off");
    drop(held);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), stderr_done).await;
    let text = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
    text
}
