//! Request ids: every response carries `x-request-id`; a sane incoming one is kept, otherwise
//! the gateway makes a random one.

use std::sync::Arc;

use http::HeaderValue;

/// The header that carries the request id, in and out.
pub const HEADER: &str = "x-request-id";

/// Longest incoming id that is kept.
const MAX_LEN: usize = 128;

/// A request id that is safe to echo in a header, a log line and JSON. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Keeps `incoming` when it is 1 to 128 characters of `A-Z a-z 0-9 . _ : -`; otherwise a new
    /// random id (128 bits as 32 hex digits).
    pub fn from_incoming(incoming: Option<&HeaderValue>) -> RequestId {
        match incoming.and_then(|v| v.to_str().ok()) {
            Some(id) if is_sane(id) => RequestId(id.into()),
            _ => RequestId::random(),
        }
    }

    /// A new random id, hex-encoded into a fixed buffer (no formatter, one allocation).
    pub fn random() -> RequestId {
        let mut text = [0u8; 32];
        hex::encode_to_slice(rand::random::<[u8; 16]>(), &mut text)
            .expect("16 bytes are 32 hex digits");
        RequestId(std::str::from_utf8(&text).expect("hex is ASCII").into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_incoming_id() {
        let v = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(RequestId::from_incoming(Some(&v)).as_str(), "abc-123_x.y:z");
    }

    #[test]
    fn replaces_missing_long_or_odd_ids() {
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        let odd = HeaderValue::from_static("a b");
        let quote = HeaderValue::from_static("a\"b");
        for incoming in [None, Some(&long), Some(&odd), Some(&quote)] {
            let id = RequestId::from_incoming(incoming);
            assert_eq!(id.as_str().len(), 32);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(RequestId::random(), RequestId::random());
    }
}
