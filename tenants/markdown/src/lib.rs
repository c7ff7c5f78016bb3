//! `markdown`: renders Markdown to HTML at the edge. `POST` the Markdown as the body, or `GET`
//! with `?text=...` (URL-encoded). Raw HTML in the input is escaped, so the output is safe to
//! embed.

use atoll_sdk::http::{HeaderValue, Method, StatusCode, header};
use atoll_sdk::{Bytes, Request, Response};
use pulldown_cmark::{Event, Options, Parser, html};

/// The Markdown as HTML; raw HTML in the input comes out as text.
fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
        .map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            other => other,
        });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// Decodes `+` and `%XX` of a query value.
fn url_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn markdown(request: Request) -> Response {
    let source = if request.method() == Method::POST {
        String::from_utf8_lossy(request.body()).into_owned()
    } else {
        request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("text="))
            .map(url_decode)
            .unwrap_or_default()
    };
    let mut response = Response::new(Bytes::from(render(&source)));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

atoll_sdk::export!(markdown);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes_raw_html() {
        assert_eq!(render("# Hi\n\n*there*"), "<h1>Hi</h1>\n<p><em>there</em></p>\n");
        assert!(render("<script>x</script>").contains("&lt;script&gt;"));
        assert_eq!(url_decode("a+b%21%zz"), "a b!%zz");
    }
}
