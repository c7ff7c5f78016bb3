//! Request paths normalised before routing, so that what a route covers cannot be reached by
//! another spelling of the same path (`//admin`, `/x/../admin`, `/%61dmin`). Like Cloudflare's
//! URL normalisation:
//!
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, and the hex
//!    digits of every other escape are made uppercase;
//! 2. runs of `/` become one;
//! 3. `.` segments are removed and `..` removes the segment before it.
//!
//! A path that would climb above `/`, or that holds an encoded `/` (`%2F`) or `\` (`%5C`),
//! which the two ends of a route could read differently, is refused. The query is left alone.
//! Functions and origins receive the normalised path.

use std::borrow::Cow;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` would go above `/`.
    #[error("the path climbs above `/`")]
    Climbs,
    /// An encoded `/` or `\` inside a segment.
    #[error("the path holds an encoded `/` or `\\`")]
    EncodedSeparator,
    /// Not an absolute path.
    #[error("the path does not start with `/`")]
    Relative,
    /// The normalised path could not be put back into the request's URI.
    #[error("the path is not valid once normalised")]
    Invalid,
}

/// `path` normalised; borrowed when it already was (the common case costs one scan).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        // `*` (OPTIONS) and authority forms are not routed by path.
        return if path == "*" {
            Ok(Cow::Borrowed(path))
        } else {
            Err(PathError::Relative)
        };
    }
    if is_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded[1..].split('/') {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop().ok_or(PathError::Climbs)?;
                trailing_slash = true;
            }
            segment => segments.push(segment),
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        normal.push('/');
    }
    Ok(Cow::Owned(normal))
}

/// Whether `path` (absolute) has nothing to normalise: no `%`, no empty segment but the
/// last, no `.` or `..` segment.
fn is_normal(path: &str) -> bool {
    if path.contains('%') {
        return false;
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last) || segment == "." || segment == ".." {
            return false;
        }
    }
    true
}

/// Decodes escapes of unreserved characters and uppercases the others; refuses an encoded
/// `/` or `\`.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            let byte = high << 4 | low;
            if byte == b'/' || byte == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(byte as char);
            } else {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        // A path is ASCII once parsed as a URI; copy the byte as it is.
        out.push(bytes[i] as char);
        i += 1;
    }
    Ok(out)
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(path: &str) -> String {
        normalize(path).unwrap().into_owned()
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for path in ["/", "/a", "/a/b", "/a/b/", "/a.b/c..d/.e", "*"] {
            assert!(matches!(normalize(path), Ok(Cow::Borrowed(_))), "{path}");
        }
    }

    #[test]
    fn every_other_spelling_becomes_the_normal_one() {
        let cases = [
            ("//admin", "/admin"),
            ("/x//admin", "/x/admin"),
            ("/x/../admin", "/admin"),
            ("/./admin", "/admin"),
            ("/admin/.", "/admin/"),
            ("/admin/x/..", "/admin/"),
            ("/x/%2e%2e/admin", "/admin"),
            ("/x/%2E%2E/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a%7eb", "/a~b"),
            ("/a%20b", "/a%20b"),
            ("/a%c3%a9", "/a%C3%A9"),
            ("/a/", "/a/"),
            ("/..a/b", "/..a/b"),
            ("/%", "/%"),
        ];
        for (path, expected) in cases {
            assert_eq!(normal(path), expected, "{path}");
        }
    }

    #[test]
    fn climbing_and_encoded_separators_are_refused() {
        for path in [
            "/..",
            "/../admin",
            "/a/../../b",
            "/%2e%2e/admin",
            "/a/%2E%2E/..",
        ] {
            assert_eq!(normalize(path), Err(PathError::Climbs), "{path}");
        }
        for path in ["/a%2fb", "/a%2Fb", "/a%5cb"] {
            assert_eq!(normalize(path), Err(PathError::EncodedSeparator), "{path}");
        }
        assert_eq!(normalize("a/b"), Err(PathError::Relative));
    }
}
