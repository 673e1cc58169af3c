//! Cross-site request forgery defences for cookie-authenticated requests (OWASP CSRF cheat sheet):
//!
//! - Synchronizer tokens: `HMAC(server key, binding)` where the binding is the web session's id or,
//!   before sign-in, a random pre-session cookie. The token is derived, not stored, so it needs no
//!   table; a token of one session is worthless in another; it names its ring key, so the data key
//!   ring rotates without breaking open forms.
//! - Masking: each rendering of a token XORs it with a fresh random pad (`m1.<pad>.<masked>`), so a
//!   page never repeats the same secret bytes beside reflected input and a compression side channel
//!   (BREACH) has nothing stable to recover.
//! - Fetch Metadata and `Origin`: a browser that says a request is cross-site (or comes from another
//!   origin) is refused before any token is looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::keyed_hash::KeyedHasher;
use crate::keys::KeyRing;

/// The label the token key is derived under (distinct from every other use of the data key ring).
pub const LABEL: &str = "tradesignal csrf token v1";

/// Tokens longer than this are refused unread.
const MAX_TOKEN_CHARS: usize = 512;

/// Issues and checks synchronizer tokens.
pub struct CsrfTokens {
    hasher: KeyedHasher,
}

impl std::fmt::Debug for CsrfTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfTokens").finish_non_exhaustive()
    }
}

/// What a token is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// A signed-in web session (its id).
    Session(&'a str),
    /// A visitor before sign-in (the value of the pre-session cookie).
    Visitor(&'a str),
}

impl Binding<'_> {
    fn bytes(&self) -> Vec<u8> {
        // Prefixed and separated, so a session id can never pass as a visitor value or the reverse.
        let (kind, value) = match self {
            Binding::Session(id) => ("session", *id),
            Binding::Visitor(value) => ("visitor", *value),
        };
        let mut bytes = Vec::with_capacity(kind.len() + 1 + value.len());
        bytes.extend_from_slice(kind.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes
    }
}

impl CsrfTokens {
    pub fn new(ring: &KeyRing) -> Self {
        Self {
            hasher: KeyedHasher::new(ring, LABEL),
        }
    }

    /// A token for `binding`, masked afresh: every call gives another string, all valid for the
    /// binding's life (so every open tab's form stays valid).
    pub fn issue(&self, binding: Binding<'_>) -> String {
        mask(&self.hasher.hash(&binding.bytes()))
    }

    /// Whether `token` was issued for `binding`; constant time in where they differ. An empty binding
    /// never verifies.
    pub fn verify(&self, token: &str, binding: Binding<'_>) -> bool {
        let empty = match binding {
            Binding::Session(v) | Binding::Visitor(v) => v.is_empty(),
        };
        if empty || token.len() > MAX_TOKEN_CHARS {
            return false;
        }
        unmask(token).is_some_and(|raw| self.hasher.verify(&binding.bytes(), &raw))
    }
}

const MASK_PREFIX: &str = "m1.";

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// `m1.<pad>.<token XOR pad>`, both base64url.
fn mask(token: &str) -> String {
    let pad = crate::random::bytes(token.len());
    format!(
        "{MASK_PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&pad),
        URL_SAFE_NO_PAD.encode(xor(token.as_bytes(), &pad))
    )
}

fn unmask(masked: &str) -> Option<String> {
    let (pad, body) = masked.strip_prefix(MASK_PREFIX)?.split_once('.')?;
    let pad = URL_SAFE_NO_PAD.decode(pad).ok()?;
    let body = URL_SAFE_NO_PAD.decode(body).ok()?;
    if pad.len() != body.len() {
        return None;
    }
    String::from_utf8(xor(&body, &pad)).ok()
}

/// Why a request was refused as cross-site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRefusal {
    /// `Sec-Fetch-Site` says the request came from another site (or a same-site sibling).
    CrossSite,
    /// `Origin` names another origin (or the opaque `null`).
    ForeignOrigin,
}

impl SiteRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrossSite => "cross_site",
            Self::ForeignOrigin => "foreign_origin",
        }
    }
}

/// Fetch Metadata and `Origin` checks of a state-changing request to `own_origin`
/// (`scheme://host[:port]`). `Sec-Fetch-Site` decides when present: browsers set it and pages cannot
/// forge it, and it is right where `Origin` is not (a page sent with `Referrer-Policy: no-referrer`
/// posts with `Origin: null`). Without it, `Origin` decides. Clients that send neither (old browsers,
/// programs) pass here and are left to the synchronizer token.
pub fn check_site(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    own_origin: &str,
) -> Result<(), SiteRefusal> {
    if let Some(site) = sec_fetch_site {
        // `same-site` is refused too: a sibling subdomain (or another port) is another application.
        return match site.trim().to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(SiteRefusal::CrossSite),
        };
    }
    match origin {
        Some(origin) if !origin.trim().eq_ignore_ascii_case(own_origin) => {
            Err(SiteRefusal::ForeignOrigin)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DATA_RING, generate_ring_entry, parse_ring};
    use proptest::prelude::*;

    fn tokens(entries: &[&str]) -> CsrfTokens {
        CsrfTokens::new(&parse_ring(&entries.join(","), DATA_RING).expect("ring"))
    }

    #[test]
    fn a_token_verifies_only_for_its_binding() {
        let t = tokens(&[&generate_ring_entry("k1", 32)]);
        let token = t.issue(Binding::Session("s1"));
        assert!(t.verify(&token, Binding::Session("s1")));
        assert!(!t.verify(&token, Binding::Session("s2")));
        assert!(!t.verify(&token, Binding::Visitor("s1")));
        assert!(!t.verify("", Binding::Session("s1")));
        assert!(!t.verify(&token[..token.len() - 1], Binding::Session("s1")));
        assert!(!t.verify("k1:00", Binding::Session("s1")));
        let visitor = t.issue(Binding::Visitor("cookie"));
        assert!(t.verify(&visitor, Binding::Visitor("cookie")));
        assert!(!t.verify(&visitor, Binding::Session("cookie")));
    }

    #[test]
    fn every_rendering_is_masked_differently() {
        let t = tokens(&[&generate_ring_entry("k1", 32)]);
        let first = t.issue(Binding::Session("s1"));
        let second = t.issue(Binding::Session("s1"));
        assert_ne!(first, second);
        assert!(first.starts_with("m1."));
        assert!(
            t.verify(&first, Binding::Session("s1")) && t.verify(&second, Binding::Session("s1"))
        );
        // The unmasked token itself, or a mangled mask, is refused.
        let raw = unmask(&first).expect("unmask");
        assert!(!t.verify(&raw, Binding::Session("s1")));
        for broken in [
            first.replacen("m1.", "m2.", 1),
            first.replacen('.', "", 2),
            format!("{first}A"),
            "m1..".to_string(),
        ] {
            assert!(!t.verify(&broken, Binding::Session("s1")), "{broken}");
        }
    }

    #[test]
    fn empty_bindings_never_verify() {
        let t = tokens(&[&generate_ring_entry("k1", 32)]);
        let token = t.issue(Binding::Visitor(""));
        assert!(!t.verify(&token, Binding::Visitor("")));
        assert!(!t.verify(&t.issue(Binding::Session("")), Binding::Session("")));
    }

    #[test]
    fn another_deployment_and_rotation() {
        let old = generate_ring_entry("old", 32);
        let new = generate_ring_entry("new", 32);
        let before = tokens(&[&old]);
        let token = before.issue(Binding::Session("s"));
        assert!(tokens(&[&new, &old]).verify(&token, Binding::Session("s")));
        assert!(!tokens(&[&new]).verify(&token, Binding::Session("s")));
        assert!(!tokens(&[&generate_ring_entry("old", 32)]).verify(&token, Binding::Session("s")));
    }

    #[test]
    fn site_checks() {
        let own = "https://tradesignal.example";
        assert_eq!(check_site(None, None, own), Ok(()));
        assert_eq!(check_site(Some("same-origin"), Some(own), own), Ok(()));
        assert_eq!(check_site(Some("none"), None, own), Ok(()));
        assert_eq!(
            check_site(Some("cross-site"), Some(own), own),
            Err(SiteRefusal::CrossSite)
        );
        assert_eq!(
            check_site(Some("same-site"), None, own),
            Err(SiteRefusal::CrossSite)
        );
        // Fetch Metadata outranks Origin (a no-referrer page posts with `Origin: null`).
        assert_eq!(check_site(Some("same-origin"), Some("null"), own), Ok(()));
        assert_eq!(
            check_site(Some("cross-site"), Some(own), own),
            Err(SiteRefusal::CrossSite)
        );
        assert_eq!(
            check_site(None, Some("https://evil.example"), own),
            Err(SiteRefusal::ForeignOrigin)
        );
        assert_eq!(
            check_site(None, Some("null"), own),
            Err(SiteRefusal::ForeignOrigin)
        );
        assert_eq!(
            check_site(None, Some("https://tradesignal.example:8443"), own),
            Err(SiteRefusal::ForeignOrigin)
        );
        assert_eq!(
            check_site(None, Some("HTTPS://TRADESIGNAL.EXAMPLE"), own),
            Ok(())
        );
    }

    proptest! {
        #[test]
        fn forged_tokens_fail(session in "[a-z0-9-]{1,40}", forged in "\\PC{0,120}") {
            let t = tokens(&[&generate_ring_entry("k1", 32)]);
            let real = t.issue(Binding::Session(&session));
            prop_assume!(forged != real);
            prop_assert!(!t.verify(&forged, Binding::Session(&session)));
        }

        #[test]
        fn foreign_fetch_sites_are_refused(site in "[a-z-]{1,20}") {
            let verdict = check_site(Some(&site), None, "https://a.example");
            prop_assert_eq!(verdict.is_ok(), site == "same-origin" || site == "none");
        }
    }
}
