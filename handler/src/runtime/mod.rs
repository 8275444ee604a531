//! The runtimes: each only wires adapters to the service and translates its triggers into service calls.
//!
//! - `local`: `handler local`, one process on one SQLite file: the API and the delivery workers.
//! - `azure`: `handler serve`, the Azure Functions custom handler: invocations of the app's functions, and the
//!   API the host forwards.

pub mod azure;
pub mod local;

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = interrupt => {}, _ = terminate.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
