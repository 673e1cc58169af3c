//! The web UI's static files, compiled into the binary and served under content-hashed names
//! (`/static/app.<hash>.js`): a name changes whenever its content does, so the files can be cached
//! for a year and a deploy never mixes old scripts with new pages.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

struct Asset {
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

/// The hashed public names of the files.
pub struct Assets {
    pub script: String,
    pub style: String,
    pub icon: String,
    files: Vec<Asset>,
}

fn hashed(stem: &str, ext: &str, body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    format!("{stem}.{}.{ext}", &digest[..16])
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let script: &'static [u8] = include_bytes!("../../static/app.js");
    let style: &'static [u8] = include_bytes!("../../static/app.css");
    let icon: &'static [u8] = include_bytes!("../../static/favicon.svg");
    let files = vec![
        Asset {
            name: hashed("app", "js", script),
            content_type: "text/javascript; charset=utf-8",
            body: script,
        },
        Asset {
            name: hashed("app", "css", style),
            content_type: "text/css; charset=utf-8",
            body: style,
        },
        Asset {
            name: hashed("favicon", "svg", icon),
            content_type: "image/svg+xml",
            body: icon,
        },
    ];
    Assets {
        script: format!("/static/{}", files[0].name),
        style: format!("/static/{}", files[1].name),
        icon: format!("/static/{}", files[2].name),
        files,
    }
});

pub fn assets() -> &'static Assets {
    &ASSETS
}

/// `GET /static/{name}`: only the current hashed names exist; anything else is a 404.
pub async fn serve(Path(name): Path<String>) -> Result<Response, ApiError> {
    let asset = ASSETS
        .files
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(ApiError::not_found)?;
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_content() {
        let a = assets();
        assert!(a.script.starts_with("/static/app.") && a.script.ends_with(".js"));
        assert!(a.style.ends_with(".css"));
        assert_ne!(hashed("app", "js", b"one"), hashed("app", "js", b"two"));
        assert_eq!(hashed("app", "js", b"one"), hashed("app", "js", b"one"));
    }
}
