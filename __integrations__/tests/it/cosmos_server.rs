//! The local Cosmos DB server of the tests (`__integrations__/cosmos/server.js`): installs its npm packages when
//! they are missing, starts it, and checks each of the five fixes it makes to @vercel/cosmosdb-server
//! (docs/cosmos-local.md) over plain HTTP, the way the Rust SDK calls it.

use serde_json::{json, Value};
use testkit::node::NodeServer;

struct Server {
    _server: NodeServer,
    base: String,
}

fn start() -> Server {
    let server = testkit::node::start("cosmos", "server.js", &[], &[]).unwrap();
    Server { base: format!("http://127.0.0.1:{}", server.port), _server: server }
}

async fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let mut request = dispatcher::adapters::tls::client()
        .unwrap()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("x-ms-version", "2020-07-15")
        .header("authorization", "type%3Dmaster%26ver%3D1.0%26sig%3Dtest");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_local_cosmos_server_behaves_as_the_sdk_needs() {
    let server = start();
    let base = server.base.as_str();
    let (_, account) = call(base, "GET", "/", &[], None).await;
    assert!(!account.to_string().contains("https://"), "4: plain-HTTP endpoints are advertised: {account}");
    assert_eq!(account["writableLocations"][0]["databaseAccountEndpoint"], format!("{base}/"));

    assert_eq!(call(base, "POST", "/dbs", &[], Some(json!({"id": "d"}))).await.0, 201);
    let collection = json!({"id": "deliveries", "partitionKey": {"paths": ["/webhookId"], "kind": "Hash"}});
    assert_eq!(call(base, "POST", "/dbs/d/colls", &[], Some(collection)).await.0, 201);
    let (_, ranges) = call(base, "GET", "/dbs/d/colls/deliveries/pkranges", &[], None).await;
    assert_eq!(ranges["PartitionKeyRanges"][0]["id"], json!("0"), "1: range ids are strings");

    for (id, webhook) in [("d1", "w1"), ("d2", "w2"), ("d3", "w1")] {
        let key = format!("[\"{webhook}\"]");
        let document = json!({"id": id, "webhookId": webhook, "status": "pending"});
        let (status, _) = call(
            base,
            "POST",
            "/dbs/d/colls/deliveries/docs",
            &[("x-ms-documentdb-partitionkey", &key)],
            Some(document),
        )
        .await;
        assert_eq!(status, 201);
    }
    let w1 = [("x-ms-documentdb-partitionkey", "[\"w1\"]")];
    let (status, missing) = call(base, "GET", "/dbs/d/colls/deliveries/docs/nope", &w1, None).await;
    assert_eq!((status, &missing["code"]), (404, &json!("NotFound")), "3: a missing document is a 404");
    let (status, found) = call(base, "GET", "/dbs/d/colls/deliveries/docs/d1", &w1, None).await;
    assert_eq!((status, &found["status"]), (200, &json!("pending")));

    let query = |text: &str| Some(json!({"query": text, "parameters": [{"name": "@s", "value": "pending"}]}));
    let as_sdk_sends = [
        ("x-ms-documentdb-isquery", "true"),
        ("content-type", "application/query+json"),
        ("x-ms-documentdb-partitionkeyrangeid", "0"),
    ];
    let (status, all) = call(
        base,
        "POST",
        "/dbs/d/colls/deliveries/docs",
        &as_sdk_sends,
        query("SELECT c.id FROM c WHERE c.status = @s"),
    )
    .await;
    assert_eq!((status, all["Documents"].as_array().map(Vec::len)), (200, Some(3)), "2: cross-partition WHERE: {all}");

    let one_partition = [("x-ms-documentdb-isquery", "true"), ("content-type", "application/query+json"), w1[0]];
    let (_, page) = call(base, "POST", "/dbs/d/colls/deliveries/docs", &one_partition, query("SELECT * FROM c")).await;
    let ids: Vec<&str> = page["Documents"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids, ["d1", "d3"], "5: a single-partition query returns only that partition");
}
