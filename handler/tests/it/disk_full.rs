//! `handler local` on a disk that fills up: a small tmpfs the test mounts (which takes root; without it the test
//! says so and passes, except in CI, where it must run). The workers back off with a few log lines instead of
//! hundreds, and every event accepted is delivered once space returns.

use crate::support::{eventually_async, temp_dir, Behaviour, Dispatcher, Receivers};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the disk stays full.
const FULL_FOR: Duration = Duration::from_secs(10);

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        match output.status.success() {
            true => Ok(Tmpfs(path.to_owned())),
            false => Err(format!("cannot mount a tmpfs: {}", String::from_utf8_lossy(&output.stderr).trim())),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` to the last byte; returns the file that holds the space.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
    let _ = file.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_the_workers_with_a_few_log_lines_and_every_accepted_event_arrives() {
    let dir = temp_dir("disk-full");
    let disk = match Tmpfs::mount(&dir.join("disk"), "8m") {
        Ok(disk) => disk,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs this test, which needs a tmpfs: {why}");
            eprintln!("skipped: {why} (the test needs root)");
            return;
        }
    };
    let receivers = Receivers::start().await;
    // Slow answers, failing at first: the disk fills while attempts are under way (their records cannot be
    // written) and retries are due (they cannot be leased).
    receivers.behave("slow", Behaviour { delay: Duration::from_millis(1500), fail_first: 4, ..Behaviour::default() });
    let schedule = ["--retry-schedule", "200ms,200ms,200ms,200ms,200ms"];
    let dispatcher = Dispatcher::start_on(&disk.0.join("data"), &dir.join("handler.log"), &schedule, &[]);
    let (id, _) = dispatcher
        .register(json!({"url": receivers.url("slow"), "subscriptions": ["ping"], "attributes": {"name": "s"}}))
        .await;
    let ping = json!({"name": "ping", "payload": {"name": "s"}});
    for _ in 0..8 {
        dispatcher.publish(ping.clone()).await;
    }

    let filler = fill(&disk.0);
    let (full_since, lines_before) = (Instant::now(), dispatcher.logs().lines().count());
    let (status, answer) = dispatcher.call("POST", "/events", Some(ping)).await;
    assert!(status == 503 || status == 202, "an event while the disk is full: {status} {answer}");
    let accepted = 8 + usize::from(status == 202);
    tokio::time::sleep(FULL_FOR.saturating_sub(full_since.elapsed())).await;
    let logs = dispatcher.logs();
    let while_full: Vec<&str> = logs.lines().skip(lines_before).collect();
    assert!(while_full.iter().any(|l| l.contains("the store fails")), "the workers say what fails: {while_full:#?}");
    // What the outage itself logs (attempts already under way log their outcome too, as many as the machine's
    // pace lets finish in the window).
    let complaints = while_full.iter().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).count();
    assert!(complaints <= 15, "{complaints} warnings in {FULL_FOR:?} of a full disk: {while_full:#?}");

    std::fs::remove_file(&filler).unwrap();
    eventually_async("every accepted event delivered", Duration::from_secs(30), || async {
        let (_, page) = dispatcher.call("GET", &format!("/webhooks/{id}/deliveries?limit=100"), None).await;
        let deliveries = page["items"].as_array().cloned().unwrap_or_default();
        deliveries.len() == accepted && deliveries.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let delivered: std::collections::HashSet<String> =
        receivers.at("slow").iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
    assert_eq!(delivered.len(), accepted, "each accepted event reached the receiver");
    assert!(dispatcher.logs().contains("the store works again"));
    drop(dispatcher);
    drop(disk);
}
