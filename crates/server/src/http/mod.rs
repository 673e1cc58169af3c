//! The HTTP edge: the middleware every request passes through and the types handlers use to answer.
//! Nothing here knows about the product's domain.

pub mod bearer;
pub mod body_limit;
pub mod client;
pub mod headers;
pub mod json;
pub mod methods;
pub mod metrics;
pub mod normalize;
pub mod problem;
pub mod ratelimit;
pub mod request_id;
pub mod telemetry;

pub use client::{ClientBucket, ClientIp, ProxyTrust};
pub use headers::{CspNonce, NoReferrer, NoStore};
pub use json::{ApiJson, SafeJson};
pub use problem::{ApiError, FieldError};
pub use request_id::RequestId;
