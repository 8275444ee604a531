//! `testagent receive` as a separate process: standing receivers on the ports given, each answering as told,
//! printing one JSON line per request with whether its Standard Webhooks signature verifies.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use testkit::free_port;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn receivers_answer_as_told_and_report_each_request() {
    let (first, second) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_testagent"))
        .args(["receive", "--bind", "127.0.0.1", "--receiver", &first.to_string()])
        .args(["--receiver", &format!("{second}=410,fail-first=1")])
        .env("TESTAGENT_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.starts_with("receiving on http://127.0.0.1:"), "{line}");
    }

    let body = r#"{"name":"ping","payload":{}}"#;
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = standardwebhooks::Webhook::new(SECRET).unwrap().sign("dlv_1", timestamp, body.as_bytes()).unwrap();
    let client = dispatcher::adapters::tls::client().unwrap();
    let send = |port: u16, signature: String| {
        client
            .post(format!("http://127.0.0.1:{port}/wh1"))
            .header("webhook-id", "dlv_1")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
    };
    assert_eq!(send(first, signature.clone()).await.unwrap().status().as_u16(), 204);
    assert_eq!(send(second, "v1,bm90IGl0".into()).await.unwrap().status().as_u16(), 503, "fails the first");
    assert_eq!(send(second, signature).await.unwrap().status().as_u16(), 410, "then answers as told");

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();
    let summary: Vec<(u64, &str, bool, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["port"].as_u64().unwrap(),
                l["webhookId"].as_str().unwrap(),
                l["verified"].as_bool().unwrap(),
                l["answered"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(first as u64, "dlv_1", true, 204), (second as u64, "dlv_1", false, 503), (second as u64, "dlv_1", true, 410)]
    );
    assert_eq!(lines[0]["body"], body);
    assert!(lines.iter().all(|l| !l.to_string().contains(SECRET)), "the secret is never printed");
}
