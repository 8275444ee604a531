//! A local server that is a Node.js program under `__integrations__/`: started on a free port of its choosing,
//! which it prints first (`listening <port>`), its npm packages installed before.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running server, killed when dropped; its output after the first line is `stdout`'s.
pub struct NodeServer {
    pub child: Child,
    pub port: u16,
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `node <script> 0 <args>` in `__integrations__/<dir>` with `env` added, once its packages are there.
pub fn start(dir: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> Result<NodeServer, String> {
    let dir = crate::integrations().join(dir);
    crate::npm::install(&dir)?;
    let mut child = Command::new("node")
        .arg(script)
        .arg("0")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("node (Node.js 20 or later) runs {script}: {e}"))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    let read = stdout.read_line(&mut line).map_err(|e| e.to_string());
    match line.strip_prefix("listening ").and_then(|port| port.trim().parse().ok()) {
        Some(port) => Ok(NodeServer { child, port, stdout: Some(stdout) }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{script} did not start: {line:?} {}", read.err().unwrap_or_default()))
        }
    }
}
