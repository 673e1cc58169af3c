//! The answers every operation can give besides its own: the problem documents of the guards,
//! extractors and middleware in front of each handler. An annotation lists what its handler
//! decides; this adds what the layers around it decide, by the same rules those layers follow, so a
//! client generated from the document knows every status it can receive.

use serde_json::{Map, Value, json};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The schema of every error body (RFC 9457; `errors` only on 422).
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem document. Extension members (such as `error` or `available_since`) may follow.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "urn:tradesignal:problem:<slug>"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "code", "message"],
                    "properties": {
                        "field": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"}
                    }
                }
            }
        }
    })
}

fn problem_content() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

fn retry_after(required: bool) -> Value {
    json!({"Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": required,
        "schema": {"type": "integer", "minimum": 1}
    }})
}

/// What a layer in front of the handler can answer, and when.
struct Layer {
    status: &'static str,
    description: &'static str,
    applies: fn(&Operation) -> bool,
    headers: Option<fn() -> Value>,
}

/// The facts about an operation the layers' rules depend on.
struct Operation<'a> {
    path: &'a str,
    api: bool,
    secured: bool,
    has_path_params: bool,
    has_query_params: bool,
    has_body: bool,
    json_body: bool,
}

const LAYERS: &[Layer] = &[
    Layer {
        status: "400",
        description: "Malformed request: unreadable body, malformed JSON or a malformed header",
        applies: |op| op.api,
        headers: None,
    },
    Layer {
        status: "401",
        description: "No credentials, or a token or API key that is invalid, expired or revoked",
        applies: |op| op.secured,
        headers: Some(
            || json!({"WWW-Authenticate": {"description": "The Bearer challenge", "schema": {"type": "string"}}}),
        ),
    },
    Layer {
        status: "403",
        description: "Authenticated but not allowed: unverified email, missing scope or role, or a plan limit",
        applies: |op| op.secured,
        headers: None,
    },
    Layer {
        status: "404",
        description: "No such resource, or not the caller's",
        applies: |op| op.has_path_params,
        headers: None,
    },
    Layer {
        status: "413",
        description: "The body is larger than this endpoint accepts",
        applies: |op| op.has_body,
        headers: None,
    },
    Layer {
        status: "415",
        description: "The body has another content type than the one documented",
        applies: |op| op.has_body,
        headers: None,
    },
    Layer {
        status: "422",
        description: "Invalid input; `errors` names each bad field or parameter (never echoing its value)",
        applies: |op| op.json_body || op.has_query_params,
        headers: None,
    },
    Layer {
        status: "429",
        description: "A rate limit or brute-force throttle; retry after the given seconds",
        applies: |op| op.api,
        headers: Some(|| retry_after(true)),
    },
    Layer {
        status: "503",
        description: "Busy (the password-hashing queue is full) or a dependency is unavailable",
        applies: |op| op.api || op.path == "/readyz",
        headers: Some(|| retry_after(false)),
    },
];

/// Completes every operation's responses and path parameters, and adds the `Problem` schema.
pub fn apply(document: &mut Value) {
    if let Some(schemas) = document
        .pointer_mut("/components")
        .and_then(Value::as_object_mut)
        .map(|c| c.entry("schemas").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        schemas.insert("Problem".into(), problem_schema());
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    unique_operation_ids(paths);
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(operation) = item.get_mut(*method).and_then(Value::as_object_mut) {
                declare_path_parameters(path, operation);
                complete_responses(path, operation);
            }
        }
    }
}

/// Handlers in different modules share names (`unlock`, `list`): an id used twice is qualified by
/// the operation's tag, as OpenAPI requires ids to be unique.
fn unique_operation_ids(paths: &mut Map<String, Value>) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for item in paths.values() {
        for method in METHODS {
            if let Some(id) = item
                .pointer(&format!("/{method}/operationId"))
                .and_then(Value::as_str)
            {
                *seen.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    for item in paths.values_mut() {
        for method in METHODS {
            let Some(operation) = item.get_mut(*method) else {
                continue;
            };
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if seen.get(&id).is_some_and(|&n| n > 1) {
                let tag = operation["tags"][0]
                    .as_str()
                    .unwrap_or("api")
                    .replace('-', "_");
                operation["operationId"] = Value::String(format!("{tag}_{id}"));
            }
        }
    }
}

/// The `{name}` segments of a path.
fn template_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Every `{name}` in the path is a required path parameter (an annotation may have left it out).
fn declare_path_parameters(path: &str, operation: &mut Map<String, Value>) {
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    let Some(parameters) = parameters.as_array_mut() else {
        return;
    };
    for name in template_names(path) {
        let declared = parameters
            .iter()
            .any(|p| p["in"] == "path" && p["name"] == name);
        if !declared {
            parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": {"type": "string"}
            }));
        }
    }
}

fn facts<'a>(path: &'a str, operation: &Map<String, Value>) -> Operation<'a> {
    let parameters = operation.get("parameters").and_then(Value::as_array);
    let has = |place: &str| parameters.is_some_and(|ps| ps.iter().any(|p| p["in"] == place));
    let content = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object);
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|schemes| {
            schemes.iter().any(|s| {
                s.as_object()
                    .is_some_and(|s| s.keys().any(|k| k == "bearer" || k == "api_key"))
            })
        });
    Operation {
        path,
        api: path.starts_with("/api/v1/"),
        secured,
        has_path_params: has("path"),
        has_query_params: has("query"),
        has_body: content.is_some(),
        json_body: content.is_some_and(|c| c.contains_key("application/json")),
    }
}

fn complete_responses(path: &str, operation: &mut Map<String, Value>) {
    let facts = facts(path, operation);
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for layer in LAYERS.iter().filter(|layer| (layer.applies)(&facts)) {
        responses
            .entry(layer.status)
            .or_insert_with(|| json!({"description": layer.description}));
        if let (Some(headers), Some(response)) = (
            layer.headers,
            responses
                .get_mut(layer.status)
                .and_then(Value::as_object_mut),
        ) {
            let declared = response.entry("headers").or_insert_with(|| json!({}));
            if let (Some(declared), Value::Object(wanted)) = (declared.as_object_mut(), headers()) {
                for (name, header) in wanted {
                    declared.entry(name).or_insert(header);
                }
            }
        }
    }
    // Every error answer is a problem document, including those the annotations declared bare.
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let Some(response) = response.as_object_mut().filter(|_| is_error) {
            let content = response.entry("content").or_insert_with(|| json!({}));
            if let Some(content) = content
                .as_object_mut()
                .filter(|c| c.is_empty() || c.contains_key("application/problem+json"))
            {
                *content = problem_content().as_object().cloned().unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(op) = item.get(*method) {
                    found.push((method.to_string(), path.clone(), op.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn operation_ids_are_unique() {
        let document = crate::openapi::document();
        let mut ids: Vec<String> = operations(&document)
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().expect("operationId").to_string())
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let document = crate::openapi::document();
        for (method, path, op) in operations(&document) {
            for name in template_names(&path) {
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == name));
                assert!(declared, "{method} {path}: {name}");
            }
        }
    }

    #[test]
    fn every_api_operation_is_secured_or_deliberately_public() {
        const PUBLIC: &[&str] = &[
            "/api/v1/openapi.json",
            "/api/v1/security/csp-report",
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/login/mfa",
            "/api/v1/auth/refresh",
            "/api/v1/auth/verify-email",
            "/api/v1/auth/confirm-email",
            "/api/v1/auth/forgot-password",
            "/api/v1/auth/reset-password",
            "/api/v1/auth/unlock",
            "/api/v1/auth/password-strength",
        ];
        for (method, path, op) in operations(&crate::openapi::document()) {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !PUBLIC.contains(&path.as_str()), "{method} {path}");
        }
    }

    #[test]
    fn guarded_operations_declare_the_guards_answers_as_problems() {
        let document = crate::openapi::document();
        for (method, path, op) in operations(&document) {
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]
                            .get("application/problem+json")
                            .is_some()
                            || path == "/metrics",
                        "{method} {path} {status}"
                    );
                }
            }
            if path.starts_with("/api/v1/") {
                assert!(responses.contains_key("429"), "{method} {path}");
                assert_eq!(responses["429"]["headers"]["Retry-After"]["required"], true);
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) && path != "/metrics" {
                assert!(responses.contains_key("401") && responses.contains_key("403"));
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
        }
        assert_eq!(
            document["components"]["schemas"]["Problem"]["required"][0],
            "type"
        );
    }
}
