//! `jwt-check`: verifies an HS256 JSON Web Token at the edge. The token comes in
//! `Authorization: Bearer <token>`; the key is the function's config variable `jwt_secret`.
//! A valid, unexpired token gets `200` with its subject and claims; anything else gets `401`
//! with the reason (and `WWW-Authenticate`), before any origin is bothered.

use atoll_sdk::http::{HeaderValue, StatusCode, header};
use atoll_sdk::{Bytes, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Why a token was refused.
#[derive(Debug, PartialEq)]
enum Refusal {
    Missing,
    Malformed,
    Algorithm,
    Signature,
    Expired,
    NotYetValid,
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing => "no bearer token",
            Refusal::Malformed => "the token is not a JWT",
            Refusal::Algorithm => "only HS256 tokens are accepted",
            Refusal::Signature => "the signature does not verify",
            Refusal::Expired => "the token has expired",
            Refusal::NotYetValid => "the token is not valid yet",
        }
    }
}

/// The claims of `token` when it is an HS256 JWT signed with `secret`, valid at `now` (Unix
/// seconds).
fn verify(token: &str, secret: &[u8], now: u64) -> Result<Value, Refusal> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let decode = |part: &str| -> Result<Value, Refusal> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)
    };
    let header = decode(head)?;
    if header["alg"] != "HS256" {
        return Err(Refusal::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::Signature)?;
    mac.update(format!("{head}.{body}").as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&signature).map_err(|_| Refusal::Signature)?;
    let claims = decode(body)?;
    if let Some(exp) = claims["exp"].as_u64()
        && now >= exp
    {
        return Err(Refusal::Expired);
    }
    if let Some(nbf) = claims["nbf"].as_u64()
        && now < nbf
    {
        return Err(Refusal::NotYetValid);
    }
    Ok(claims)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn check(request: Request) -> Response {
    let Some(secret) = atoll_sdk::config::get("jwt_secret").ok().flatten() else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "the function has no jwt_secret config variable"}),
        );
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match token.ok_or(Refusal::Missing).and_then(|t| verify(t.trim(), secret.as_bytes(), now)) {
        Ok(claims) => json_response(
            StatusCode::OK,
            json!({"subject": claims["sub"], "claims": claims}),
        ),
        Err(refusal) => {
            let mut response =
                json_response(StatusCode::UNAUTHORIZED, json!({"error": refusal.reason()}));
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    }
}

atoll_sdk::export!(check);

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(claims: Value, secret: &[u8], alg: &str) -> String {
        let head = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{head}.{body}.{signature}")
    }

    #[test]
    fn verifies_signature_algorithm_and_times() {
        let good = sign(json!({"sub": "ann", "exp": 2000}), b"k", "HS256");
        assert_eq!(verify(&good, b"k", 1000).unwrap()["sub"], "ann");
        assert_eq!(verify(&good, b"other", 1000), Err(Refusal::Signature));
        assert_eq!(verify(&good, b"k", 2000), Err(Refusal::Expired));
        let early = sign(json!({"nbf": 1500}), b"k", "HS256");
        assert_eq!(verify(&early, b"k", 1000), Err(Refusal::NotYetValid));
        let none = sign(json!({}), b"k", "none");
        assert_eq!(verify(&none, b"k", 1000), Err(Refusal::Algorithm));
        assert_eq!(verify("a.b", b"k", 0), Err(Refusal::Malformed));
    }
}
