//! Stand-ins of the internal APIs the catalog's enrichers ask (`__integrations__/catalogs/downstream.json`),
//! served beside the hooks: the customer API (`GET /apis/customers/{id}`, a bearer token required) and the
//! orders GraphQL API (`POST /apis/graphql`), which answers `200 {"errors": [...]}` for an order it does not
//! know, as GraphQL servers do. Each request is recorded, for the scenarios to count.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The token the customer API takes (`CTP_CUSTOMER_API_TOKEN`).
pub const CUSTOMER_API_TOKEN: &str = "ctp-customer-api-token";

/// What the stand-ins were asked: the path, the headers and the JSON body.
#[derive(Clone, Default)]
pub struct Apis(Arc<Mutex<Vec<(String, HeaderMap, Value)>>>);

impl Apis {
    pub fn router(&self) -> Router {
        Router::new()
            .route("/apis/customers/{id}", get(customer))
            .route("/apis/graphql", post(graphql))
            .with_state(self.clone())
    }

    /// The requests whose path starts with `prefix`.
    pub fn asked(&self, prefix: &str) -> Vec<(String, HeaderMap, Value)> {
        let asked = self.0.lock().map(|a| a.clone()).unwrap_or_default();
        asked.into_iter().filter(|(path, _, _)| path.starts_with(prefix)).collect()
    }

    fn record(&self, path: String, headers: &HeaderMap, body: Value) {
        if let Ok(mut asked) = self.0.lock() {
            asked.push((path, headers.clone(), body));
        }
    }
}

/// A customer's details, made from its id: what the scenarios expect to see in each target's body.
pub fn customer_details(id: &str) -> Value {
    json!({"id": id, "name": format!("Customer {id}"), "email": format!("{}@example.com", id.to_lowercase())})
}

async fn customer(State(apis): State<Apis>, Path(id): Path<String>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    apis.record(format!("customers/{id}"), &headers, Value::Null);
    let expected = format!("Bearer {CUSTOMER_API_TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "unauthorized"})));
    }
    (StatusCode::OK, Json(customer_details(&id)))
}

async fn graphql(State(apis): State<Apis>, headers: HeaderMap, Json(request): Json<Value>) -> Json<Value> {
    apis.record("graphql".to_owned(), &headers, request.clone());
    let id = request["variables"]["id"].as_str().unwrap_or_default().to_owned();
    if id.starts_with("O-missing") {
        return Json(json!({"data": {"order": null}, "errors": [{"message": format!("order {id} not found")}]}));
    }
    Json(json!({"data": {"order": {"id": id, "total": 42.5, "currency": "EUR"}}}))
}
