//! `handler local` as a child process of the test agent, on a data dir of its own.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The handler under test, killed when dropped.
pub struct Handler {
    pub child: Child,
    /// The API base URL it printed, e.g. `http://127.0.0.1:41234/api/v1`.
    pub api: String,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Handler {
    /// Starts `handler local --port 0` on `dir` (the `binary`, or the `handler` next to this program) and waits
    /// for its ready line; returns it with the time that took.
    pub fn start(binary: Option<&Path>, dir: &Path, extra: &[&str]) -> anyhow::Result<(Handler, Duration)> {
        let binary = match binary {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()?.with_file_name("handler"),
        };
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .args(["local", "--port", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("DISPATCHER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {} (build it with `cargo build -p handler`)", binary.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let ready = started.elapsed();
        let Some(api) = line.split_whitespace().find(|w| w.starts_with("http://")) else {
            bail!("the handler did not start: {line:?}");
        };
        let api = api.trim_end_matches(',').to_owned();
        Ok((Handler { child, api }, ready))
    }
}
