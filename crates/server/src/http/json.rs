//! `ApiJson<T>`: the JSON body extractor of every endpoint. It insists on `application/json` (415),
//! rejects malformed JSON (400), a body that is not a JSON object (422: serde would otherwise read a
//! struct from an array, which no documented client sends) and unknown or mistyped fields (422, with
//! the field named) — without ever echoing a submitted value, which could be a password.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::problem::{ApiError, FieldError};

pub struct ApiJson<T>(pub T);

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The field named in a serde message like "unknown field `role`, expected …".
fn quoted_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

fn join_path(path: &str, field: &str) -> String {
    // serde_path_to_error already ends the path with an unknown field's name.
    if path == field || path.ends_with(&format!(".{field}")) {
        path.to_string()
    } else if path.is_empty() || path == "." {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Field names come from the client: long ones are cut so a problem document stays small.
const MAX_FIELD_NAME_CHARS: usize = 64;

/// Turns a deserialisation failure into field errors that carry no submitted values.
pub fn field_error(path: &str, message: &str) -> FieldError {
    let mut error = field_error_untruncated(path, message);
    if error.field.chars().count() > MAX_FIELD_NAME_CHARS {
        error.field = error
            .field
            .chars()
            .take(MAX_FIELD_NAME_CHARS)
            .collect::<String>()
            + "…";
    }
    error
}

fn field_error_untruncated(path: &str, message: &str) -> FieldError {
    if message.starts_with("unknown field") {
        let field = quoted_field(message).unwrap_or("?");
        FieldError::new(
            join_path(path, field),
            "unknown_field",
            "This field is not accepted.",
        )
    } else if message.starts_with("missing field") {
        let field = quoted_field(message).unwrap_or("?");
        FieldError::new(
            join_path(path, field),
            "required",
            "This field is required.",
        )
    } else if message.starts_with("invalid type") {
        FieldError::new(path, "invalid_type", "This field has the wrong type.")
    } else if message.starts_with("invalid length") {
        FieldError::new(
            path,
            "invalid_length",
            "This field has the wrong number of items.",
        )
    } else {
        FieldError::new(path, "invalid", "This field has an invalid value.")
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&request) {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload-too-large",
                        "The request body is larger than this endpoint accepts.",
                    )
                } else {
                    ApiError::bad_request("malformed-body", "The request body could not be read.")
                }
            })?;
        if !is_object(&bytes) {
            return Err(
                if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
                    ApiError::validation(vec![FieldError::new(
                        "body",
                        "invalid_type",
                        "The request body must be a JSON object.",
                    )])
                } else {
                    malformed()
                },
            );
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Ok(value) => value,
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                return Err(if inner.is_data() {
                    ApiError::validation(vec![field_error(&path, &inner.to_string())])
                } else {
                    malformed()
                });
            }
        };
        deserializer.end().map_err(|_| malformed())?;
        Ok(Self(value))
    }
}

/// Whether the body's first significant byte opens an object.
fn is_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

/// An optional whole number that may be written as `20` or `20.0`: JSON (and JSON Schema's
/// `integer`) do not tell the two apart, so neither does the API. Fractions and values out of range
/// are refused as the wrong type.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("invalid type: expected a whole number"))
}

fn malformed() -> ApiError {
    ApiError::bad_request("malformed-json", "The request body is not valid JSON.")
}

/// A JSON response whose `<`, `>` and `&` are written as `\u003c`, `\u003e` and `\u0026`. The
/// decoded strings are unchanged, but user-written text (watchlist notes, names) can never form
/// markup if a client or a browser sniffing the body ever treats it as HTML.
pub struct SafeJson<T>(pub T);

/// Escapes the HTML-significant characters of serialised JSON. Outside strings JSON never uses
/// them, so replacing every occurrence is exact.
pub fn html_safe_json(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    for &byte in json {
        match byte {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            other => out.push(other),
        }
    }
    out
}

impl<T: serde::Serialize> axum::response::IntoResponse for SafeJson<T> {
    fn into_response(self) -> axum::response::Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                html_safe_json(&bytes),
            )
                .into_response(),
            Err(e) => ApiError::internal(e).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use serde::Deserialize;
    use tower::ServiceExt;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Profile {
        full_name: String,
        age: Option<u32>,
    }

    async fn call(content_type: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route("/", post(|ApiJson(_p): ApiJson<Profile>| async { "ok" }));
        let request = Request::post("/")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = app.oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn accepts_json_with_charset() {
        let (status, _) = call("application/json; charset=utf-8", r#"{"full_name":"Ann"}"#).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn other_content_types_are_415() {
        let (status, body) = call("text/plain", r#"{"full_name":"Ann"}"#).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            body["type"],
            "urn:tradesignal:problem:unsupported-media-type"
        );
    }

    #[tokio::test]
    async fn malformed_json_is_400_and_trailing_garbage_too() {
        assert_eq!(
            call("application/json", "{").await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call("application/json", r#"{"full_name":"a"} x"#).await.0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn bodies_that_are_not_objects_are_422_even_where_serde_would_read_them() {
        // serde reads a struct from a sequence of its fields: an array must not pass for an object.
        for body in [
            r#"["Ann", 30]"#,
            r#""Ann""#,
            "42",
            "null",
            "[]",
            " \n[\"Ann\"]",
        ] {
            let (status, body) = call("application/json", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["errors"][0]["code"], "invalid_type");
            assert_eq!(body["errors"][0]["field"], "body");
        }
        assert_eq!(
            call("application/json", "[1,").await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call("application/json", " \t{\"full_name\":\"Ann\"}")
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn unknown_fields_are_422_and_named() {
        let (status, body) = call(
            "application/json",
            r#"{"full_name":"a","role":"super_admin"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "role");
        assert_eq!(body["errors"][0]["code"], "unknown_field");
    }

    #[tokio::test]
    async fn wrong_types_never_echo_the_value() {
        let (status, body) = call(
            "application/json",
            r#"{"full_name":"a","age":"hunter2-secret"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "age");
        assert!(!body.to_string().contains("hunter2"));
        let (status, body) = call("application/json", "{}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["code"], "required");
    }

    #[test]
    fn safe_json_escapes_markup_but_decodes_unchanged() {
        let text = "<script>alert(1)</script> & co";
        let bytes =
            html_safe_json(&serde_json::to_vec(&serde_json::json!({ "notes": text })).unwrap());
        let raw = String::from_utf8(bytes.clone()).unwrap();
        assert!(!raw.contains('<') && !raw.contains('>') && !raw.contains('&'));
        let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["notes"], text);
    }
}
