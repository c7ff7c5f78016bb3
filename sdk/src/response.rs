//! Turning handler return values into HTTP responses.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::Response;

/// A value a handler can return: anything that converts into a [`Response`].
///
/// | Return type                  | Response sent                                      |
/// |------------------------------|----------------------------------------------------|
/// | [`Response`]                 | as is                                              |
/// | `&'static str`, [`String`]   | `200 OK`, `text/plain; charset=utf-8`, the string  |
/// | `Result<T, E>`               | `T`'s response, or `500` with `E`'s message as text |
///
/// In `Result<T, E>`, `T` is any `IntoResponse` type and `E` any
/// [`Display`](fmt::Display) type, so handlers can use `?` freely.
///
/// ```
/// use atoll_sdk::{IntoResponse, http::StatusCode};
///
/// let ok = "hi".into_response();
/// assert_eq!(ok.status(), StatusCode::OK);
///
/// let failed = Err::<String, _>("database is down").into_response();
/// assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(failed.body().as_ref(), b"database is down\n");
/// ```
pub trait IntoResponse {
    /// Converts `self` into the response sent to the client.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(StatusCode::OK, self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(StatusCode::OK, self)
    }
}

impl<T, E> IntoResponse for Result<T, E>
where
    T: IntoResponse,
    E: fmt::Display,
{
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(err) => {
                crate::guest::log(format_args!("handler failed: {err}"));
                text(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n"))
            }
        }
    }
}

/// Builds a `text/plain; charset=utf-8` response.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(response: &Response) -> &str {
        response.headers()[header::CONTENT_TYPE].to_str().unwrap()
    }

    #[test]
    fn strings_are_plain_text_ok() {
        for response in [
            "static".into_response(),
            String::from("static").into_response(),
        ] {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(content_type(&response), "text/plain; charset=utf-8");
            assert_eq!(response.body().as_ref(), b"static");
        }
    }

    #[test]
    fn response_is_passed_through() {
        let mut original = Response::new(Bytes::from_static(b"{}"));
        *original.status_mut() = StatusCode::CREATED;
        let response = original.into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().is_empty());
        assert_eq!(response.body().as_ref(), b"{}");
    }

    #[test]
    fn ok_uses_the_inner_response() {
        let response = Ok::<_, String>("fine").into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().as_ref(), b"fine");
    }

    #[test]
    fn err_is_a_500_with_the_message() {
        let response = Err::<Response, _>(std::fmt::Error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type(&response), "text/plain; charset=utf-8");
        assert_eq!(
            response.body().as_ref(),
            b"an error occurred when formatting an argument\n"
        );
    }
}
