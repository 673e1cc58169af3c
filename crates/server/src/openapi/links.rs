//! OpenAPI links: how the id in one answer feeds the next request (create a watchlist, then read,
//! change and delete it). Generated clients and stateful testers follow them.

use serde_json::{Value, json};

/// (method, path, status) of the answer, link name, (method, path) of the operation it leads to,
/// and where the target's `{id}`-like parameter comes from.
struct Link {
    from: (&'static str, &'static str, &'static str),
    name: &'static str,
    to: (&'static str, &'static str),
    parameter: (&'static str, &'static str),
}

const fn link(
    from: (&'static str, &'static str, &'static str),
    name: &'static str,
    to: (&'static str, &'static str),
    parameter: (&'static str, &'static str),
) -> Link {
    Link {
        from,
        name,
        to,
        parameter,
    }
}

const WATCHLIST: &str = "/api/v1/watchlists/{id}";
const ALERT: &str = "/api/v1/alerts/{id}";
const KEY: &str = "/api/v1/api-keys/{id}";
const NEW_ID: (&str, &str) = ("path.id", "$response.body#/id");

#[rustfmt::skip]
const LINKS: &[Link] = &[
    link(("post", "/api/v1/watchlists", "201"), "GetWatchlist", ("get", WATCHLIST), NEW_ID),
    link(("post", "/api/v1/watchlists", "201"), "UpdateWatchlist", ("patch", WATCHLIST), NEW_ID),
    link(("post", "/api/v1/watchlists", "201"), "DeleteWatchlist", ("delete", WATCHLIST), NEW_ID),
    link(("post", "/api/v1/alerts", "201"), "GetAlert", ("get", ALERT), NEW_ID),
    link(("post", "/api/v1/alerts", "201"), "UpdateAlert", ("patch", ALERT), NEW_ID),
    link(("post", "/api/v1/alerts", "201"), "DeleteAlert", ("delete", ALERT), NEW_ID),
    link(("post", "/api/v1/alerts", "201"), "GetAlertHistory", ("get", "/api/v1/alerts/{id}/history"), NEW_ID),
    link(("post", "/api/v1/api-keys", "201"), "RevokeKey", ("delete", KEY), NEW_ID),
    link(("post", "/api/v1/api-keys", "201"), "RotateKey", ("post", "/api/v1/api-keys/{id}/rotate"), NEW_ID),
    link(("post", "/api/v1/api-keys", "201"), "GetKeyUsage", ("get", "/api/v1/api-keys/{id}/usage"), NEW_ID),
    link(("get", "/api/v1/trades", "200"), "GetFirstTrade", ("get", "/api/v1/trades/{id}"), ("path.id", "$response.body#/items/0/id")),
    link(("get", "/api/v1/trades", "200"), "GetFirstCompany", ("get", "/api/v1/companies/{ticker}"), ("path.ticker", "$response.body#/items/0/company/ticker")),
    link(("get", "/api/v1/trades", "200"), "GetFirstInsider", ("get", "/api/v1/insiders/{cik}"), ("path.cik", "$response.body#/items/0/insider/cik")),
    link(("get", "/api/v1/auth/sessions", "200"), "RevokeFirstSession", ("delete", "/api/v1/auth/sessions/{id}"), ("path.id", "$response.body#/0/id")),
];

/// A JSON pointer to an operation (RFC 6901 escaping of the path).
fn operation_ref(method: &str, path: &str) -> String {
    format!(
        "#/paths/{}/{method}",
        path.replace('~', "~0").replace('/', "~1")
    )
}

pub fn apply(document: &mut Value) {
    for link in LINKS {
        let (method, path, status) = link.from;
        let Some(response) = document
            .get_mut("paths")
            .and_then(|p| p.get_mut(path))
            .and_then(|i| i.get_mut(method))
            .and_then(|o| o.get_mut("responses"))
            .and_then(|r| r.get_mut(status))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let links = response.entry("links").or_insert_with(|| json!({}));
        let (target_method, target_path) = link.to;
        let (name, expression) = link.parameter;
        links[link.name] = json!({
            "operationRef": operation_ref(target_method, target_path),
            "parameters": {name: expression}
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_joins_two_operations_of_the_document() {
        let document = crate::openapi::document();
        for link in LINKS {
            let (method, path, status) = link.from;
            let response = &document["paths"][path][method]["responses"][status];
            assert!(response.is_object(), "{method} {path} {status}");
            let target = &response["links"][link.name];
            let pointer = target["operationRef"]
                .as_str()
                .expect("operationRef")
                .trim_start_matches('#');
            let operation = document.pointer(pointer).expect("target operation");
            let (name, _) = link.parameter;
            let parameter = name.trim_start_matches("path.");
            let declared = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["in"] == "path" && p["name"] == parameter)
            });
            assert!(declared, "{}: {parameter}", link.name);
        }
    }
}
