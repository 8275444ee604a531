//! `handler local` as a separate process, as a user starts it: on port 0, reporting its API address in its
//! ready line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `command` (the `handler` binary, with its environment and where its stderr goes) as
/// `local --port 0 --data-dir <data_dir> <args>`, and reads its ready line: the child and its API base URL,
/// e.g. `http://127.0.0.1:41234/api/v1`.
pub fn start_local(mut command: Command, data_dir: &Path, args: &[String]) -> Result<(Child, String), String> {
    let mut child = command
        .args(["local", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot start {:?} (build it with `cargo build -p handler`): {e}", command.get_program())
        })?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    match line.split_whitespace().find(|word| word.starts_with("http://")) {
        Some(api) => Ok((child, api.trim_end_matches(',').to_owned())),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("the handler did not start: {line:?}"))
        }
    }
}

/// `handler local` as the test agent runs it, killed when dropped.
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

impl Handler {
    /// Starts `handler local` on `dir` (the `binary`, or the `handler` next to the running program), logging
    /// warnings only to the test agent's stderr, and waits for its ready line; returns it with the time that took.
    pub fn start(binary: Option<&Path>, dir: &Path, extra: &[&str]) -> Result<(Handler, std::time::Duration), String> {
        Handler::start_with_env(binary, dir, extra, &[])
    }

    /// [`Handler::start`] with environment variables `env` set.
    pub fn start_with_env(
        binary: Option<&Path>,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Handler, std::time::Duration), String> {
        let binary = match binary {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("handler"),
        };
        let mut command = Command::new(binary);
        command.env("DISPATCHER_LOG", "warn").envs(env.iter().copied()).stderr(Stdio::inherit());
        let started = std::time::Instant::now();
        let extra: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        let (child, api) = start_local(command, dir, &extra)?;
        Ok((Handler { child, api }, started.elapsed()))
    }
}
