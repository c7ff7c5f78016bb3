//! `redirect`: redirects by path or by header, from rules in the function's config variable
//! `rules`, one per line:
//!
//! ```text
//! path /old /new 301                       # /old/x -> /new/x (prefix at a segment boundary)
//! header user-agent Mobile https://m.example.com 302   # the header contains the text
//! ```
//!
//! The first rule that matches wins; the query is kept. A request no rule matches gets 404.

use atoll_sdk::http::{HeaderValue, StatusCode, header};
use atoll_sdk::{Bytes, Request, Response};

/// One redirect rule.
#[derive(Debug, PartialEq)]
enum Rule {
    /// Requests under `from` go to `to` with the rest of their path.
    Path { from: String, to: String, status: StatusCode },
    /// Requests whose header `name` contains `needle` go to `to` with their whole path.
    Header { name: String, needle: String, to: String, status: StatusCode },
}

fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let status = |s: Option<&str>| -> Result<StatusCode, String> {
        let code = s.unwrap_or("302").parse::<u16>().map_err(|_| format!("status {s:?}"))?;
        match code {
            301 | 302 | 303 | 307 | 308 => Ok(StatusCode::from_u16(code).expect("a redirect")),
            other => Err(format!("{other} is not a redirect status")),
        }
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["path", from, to, rest @ ..] if rest.len() <= 1 => Ok(Rule::Path {
                    from: from.trim_end_matches('/').to_owned(),
                    to: to.trim_end_matches('/').to_owned(),
                    status: status(rest.first().copied())?,
                }),
                ["header", name, needle, to, rest @ ..] if rest.len() <= 1 => Ok(Rule::Header {
                    name: name.to_ascii_lowercase(),
                    needle: (*needle).to_owned(),
                    to: to.trim_end_matches('/').to_owned(),
                    status: status(rest.first().copied())?,
                }),
                _ => Err(format!("cannot read the rule `{line}`")),
            }
        })
        .collect()
}

/// Where `request` goes, by the first rule that matches.
fn target(rules: &[Rule], request: &Request) -> Option<(String, StatusCode)> {
    let path = request.uri().path();
    let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    rules.iter().find_map(|rule| match rule {
        Rule::Path { from, to, status } => {
            let rest = path.strip_prefix(from.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| (format!("{to}{rest}{query}"), *status))
        }
        Rule::Header { name, needle, to, status } => {
            let value = request.headers().get(name.as_str())?.to_str().ok()?;
            value.contains(needle.as_str()).then(|| (format!("{to}{path}{query}"), *status))
        }
    })
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = Response::new(Bytes::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn redirect(request: Request) -> Response {
    let text = atoll_sdk::config::get("rules").ok().flatten().unwrap_or_default();
    let rules = match parse_rules(&text) {
        Ok(rules) => rules,
        Err(why) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("bad rules: {why}\n")),
    };
    match target(&rules, &request) {
        Some((location, status)) => {
            let mut response = plain(status, format!("moved to {location}\n"));
            match HeaderValue::from_str(&location) {
                Ok(value) => {
                    response.headers_mut().insert(header::LOCATION, value);
                    response
                }
                Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "bad location\n".into()),
            }
        }
        None => plain(StatusCode::NOT_FOUND, "no redirect for this request\n".into()),
    }
}

atoll_sdk::export!(redirect);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match_in_order() {
        let rules = parse_rules(
            "# comment\npath /old /new 301\nheader user-agent Mobile https://m.example.com\n",
        )
        .unwrap();
        let request = |path: &str, ua: &str| {
            atoll_sdk::http::Request::get(path)
                .header("user-agent", ua)
                .body(Bytes::new())
                .unwrap()
        };
        assert_eq!(
            target(&rules, &request("/old/a?x=1", "Desktop")),
            Some(("/new/a?x=1".to_owned(), StatusCode::MOVED_PERMANENTLY))
        );
        assert_eq!(target(&rules, &request("/oldx", "Desktop")), None);
        assert_eq!(
            target(&rules, &request("/p", "Mobile Safari")),
            Some(("https://m.example.com/p".to_owned(), StatusCode::FOUND))
        );
        assert!(parse_rules("path /a /b 200").is_err());
        assert!(parse_rules("nonsense").is_err());
    }
}
