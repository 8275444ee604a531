//! The OpenID provider of the OAuth 2.0 tests and loads (`oidc/provider.js`, on `oidc-provider`), as a process:
//! its issuer, and what it printed, one JSON line per token issued (`{"token", "client", "scope"}`) or refused
//! (`{"refused"}`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct Provider {
    child: Child,
    pub issuer: String,
    pub lines: Arc<Mutex<Vec<Value>>>,
}

impl Provider {
    /// Starts the provider with these environment variables (`TOKEN_TTL`, `ONLY_POST`, see `provider.js`),
    /// installing its packages first when they are missing.
    pub fn start(env: &[(&str, &str)]) -> Result<Provider, String> {
        let dir = crate::integrations().join("oidc");
        crate::npm::install(&dir)?;
        let mut child = Command::new("node")
            .arg("provider.js")
            .arg("0")
            .envs(env.iter().copied())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("node (Node.js 20 or later) runs the OpenID provider: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first).map_err(|e| e.to_string())?;
        let issuer = serde_json::from_str::<Value>(&first).ok().and_then(|l| l["issuer"].as_str().map(str::to_owned));
        let issuer = issuer.ok_or_else(|| format!("the provider did not start: {first:?}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if let Ok(mut lines) = seen.lock() {
                    lines.push(value);
                }
            }
        });
        Ok(Provider { child, issuer, lines })
    }

    /// The access tokens it issued, in order.
    pub fn tokens(&self) -> Vec<Value> {
        self.lines.lock().map(|l| l.iter().filter(|l| l.get("token").is_some()).cloned().collect()).unwrap_or_default()
    }

    /// How many times its token endpoint refused credentials in `Authorization` (`ONLY_POST`).
    pub fn refusals(&self) -> usize {
        self.lines.lock().map(|l| l.iter().filter(|l| l.get("refused").is_some()).count()).unwrap_or_default()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
