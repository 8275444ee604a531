//! The SSRF guard at connect time: a resolver that drops the addresses a webhook may not reach (loopback,
//! private, link-local, unique-local: `dispatcher_core::policy::targets`), and the refusal it reports. Literal
//! IP hosts never reach it: the sender checks those before connecting.

use dispatcher_core::policy::targets::forbidden;
use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The private networks the operator lets the guard pass (`DISPATCHER_ALLOWED_NETWORKS`: a partner's VPN, a
/// test bench); empty by default.
#[derive(Debug, Clone, Default)]
pub struct AllowedNetworks(pub Arc<[IpNet]>);

impl AllowedNetworks {
    /// Why the guard refuses `ip`; `None` when it may be reached.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        forbidden(ip).filter(|_| !self.0.iter().any(|network| network.contains(&ip)))
    }
}

/// A target refused by the SSRF guard.
#[derive(Debug)]
pub(super) struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub why: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {} resolves to {}, {} (private targets are not allowed)", self.host, self.ip, self.why)
    }
}

impl std::error::Error for Refused {}

/// Resolves host names; when `guarded`, drops the addresses the SSRF guard forbids, and refuses when none is
/// left. (Literal IP hosts never reach it: `target` checks those.)
#[derive(Clone)]
pub(super) struct Resolver {
    pub guarded: bool,
    pub allowed: AllowedNetworks,
}

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, BoxError>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let (host, guarded, networks) = (name.as_str().to_owned(), self.guarded, self.allowed.clone());
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !guarded {
                return Ok(resolved.into_iter());
            }
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| networks.refuses(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                if let Some(first) = resolved.first() {
                    let why = networks.refuses(first.ip()).unwrap_or("forbidden");
                    return Err(Box::new(Refused { host, ip: first.ip(), why }) as BoxError);
                }
            }
            Ok(allowed.into_iter())
        })
    }
}
