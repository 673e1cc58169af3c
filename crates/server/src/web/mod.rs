//! Server-rendered pages. Every template gets the response's CSP nonce; inline `<script>` and `<style>`
//! run only with it.

pub mod outbox;

use askama::Template;
use askama_web::WebTemplate;

use crate::http::CspNonce;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    pub nonce: String,
}

pub async fn home(CspNonce(nonce): CspNonce) -> HomePage {
    HomePage {
        nonce: nonce.to_string(),
    }
}
