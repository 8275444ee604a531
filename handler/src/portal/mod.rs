//! The integrator portal: one page of plain HTML, CSS and JavaScript modules (`assets/`) that manages webhooks
//! and shows their deliveries through the API under `/api/v1`, so it is the same in every runtime. The files
//! are compiled into the binary and ask for nothing from elsewhere (the content security policy says so).
//! Served at `/portal/`; on Azure the `Portal` function forwards `/api/portal/...` with its full path, so the
//! same files answer there too. The page itself needs no key: every API call it makes carries one.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Every file of the portal: its name, media type and content.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("assets/index.html")),
    ("portal.css", "text/css; charset=utf-8", include_str!("assets/portal.css")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("dom.js", JS, include_str!("assets/dom.js")),
    ("app.js", JS, include_str!("assets/app.js")),
    ("webhooks.js", JS, include_str!("assets/webhooks.js")),
    ("webhook-form.js", JS, include_str!("assets/webhook-form.js")),
    ("deliveries.js", JS, include_str!("assets/deliveries.js")),
    ("events.js", JS, include_str!("assets/events.js")),
    ("tenants.js", JS, include_str!("assets/tenants.js")),
    ("sources.js", JS, include_str!("assets/sources.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Nothing from elsewhere, no inline script, and never inside another site's frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The portal's routes, under both prefixes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for prefix in ["/portal", "/api/portal"] {
        let index = format!("{prefix}/");
        router = router
            .route(prefix, get(move || async move { Redirect::permanent(&index) }))
            .route(&format!("{prefix}/"), get(|| async { asset("index.html") }))
            .route(&format!("{prefix}/{{file}}"), get(|Path(file): Path<String>| async move { asset(&file) }));
    }
    router
}

fn asset(name: &str) -> Response {
    let Some((_, media_type, content)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        let body = format!("the portal has no file {name:?}");
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    };
    let mut response = (*content).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Small files, changed with every release: always checked, never stale after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portal_is_small_and_asks_nothing_from_elsewhere() {
        let size: usize = ASSETS.iter().map(|(_, _, content)| content.len()).sum();
        assert!(size <= 200 * 1024, "the portal is {size} bytes, over 200 KiB");
        // What would load something: a src, href, url(), import or fetch of an absolute URL.
        for (name, _, content) in ASSETS {
            let compact: String = content.split_whitespace().collect();
            for load in [
                "src=\"http",
                "href=\"http",
                "url(",
                "@import",
                "from'http",
                "from\"http",
                "fetch('http",
                "fetch(\"http",
                "fetch(`http",
            ] {
                assert!(!compact.contains(load), "{name} loads something from elsewhere: {load}");
            }
        }
    }

    #[test]
    fn every_file_the_page_loads_is_served() {
        let index = ASSETS[0].2;
        let mut imports: Vec<&str> = Vec::new();
        for (_, _, content) in ASSETS {
            for quoted in content.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")) {
                imports.push(quoted.trim_start_matches("./"));
            }
        }
        assert!(index.contains("app.js") && index.contains("portal.css"));
        for file in imports {
            assert!(ASSETS.iter().any(|(name, _, _)| *name == file), "{file} is loaded but not served");
        }
    }
}
