//! `json-api`: a small REST resource, `/notes`, kept in the tenant's key-value storage.
//!
//! - `GET /notes`: every note, `{"notes": [{"id", ...}]}`
//! - `POST /notes` with a JSON object: stores it under a new id, `201 {"id", ...}`
//! - `GET /notes/{id}`: the note, or `404`
//! - `PUT /notes/{id}` with a JSON object: replaces it (`200`), or `404`
//! - `DELETE /notes/{id}`: `204`, or `404`
//!
//! Ids come from an atomic counter, so concurrent `POST`s never share one.

use atoll_sdk::http::{HeaderValue, Method, StatusCode, header};
use atoll_sdk::kv::{Bucket, KvError};
use atoll_sdk::{Bytes, Request, Response};
use serde_json::{Value, json};

fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    reply(status, json!({"error": message}))
}

/// The request body as a JSON object, or the response that says why not.
fn object(request: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(request.body()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(StatusCode::BAD_REQUEST, "send a JSON object")),
    }
}

fn note(id: &str, raw: &[u8]) -> Value {
    let mut value = serde_json::from_slice::<Value>(raw).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), Value::String(id.to_owned()));
    }
    value
}

fn api(request: Request) -> Result<Response, KvError> {
    let notes = Bucket::open("notes")?;
    let path = request.uri().path().trim_end_matches('/');
    let id = match path.strip_prefix("/notes") {
        Some("") => None,
        Some(rest) => match rest.strip_prefix('/') {
            Some(id) if !id.is_empty() && !id.contains('/') => Some(id.to_owned()),
            _ => return Ok(error(StatusCode::NOT_FOUND, "no such resource")),
        },
        None => return Ok(error(StatusCode::NOT_FOUND, "no such resource")),
    };
    Ok(match (request.method().clone(), id) {
        (Method::GET, None) => {
            let ids = notes.keys()?;
            let values = notes.get_many(&ids)?;
            let list: Vec<Value> = values
                .into_iter()
                .flatten()
                .map(|(id, raw)| note(&id, &raw))
                .collect();
            reply(StatusCode::OK, json!({"notes": list}))
        }
        (Method::POST, None) => match object(&request) {
            Ok(map) => {
                let id = Bucket::open("meta")?.increment("next-note-id", 1)?.to_string();
                let raw = Value::Object(map).to_string();
                notes.set(&id, raw.as_bytes())?;
                reply(StatusCode::CREATED, note(&id, raw.as_bytes()))
            }
            Err(response) => response,
        },
        (Method::GET, Some(id)) => match notes.get(&id)? {
            Some(raw) => reply(StatusCode::OK, note(&id, &raw)),
            None => error(StatusCode::NOT_FOUND, "no such note"),
        },
        (Method::PUT, Some(id)) => match object(&request) {
            Ok(map) if notes.exists(&id)? => {
                let raw = Value::Object(map).to_string();
                notes.set(&id, raw.as_bytes())?;
                reply(StatusCode::OK, note(&id, raw.as_bytes()))
            }
            Ok(_) => error(StatusCode::NOT_FOUND, "no such note"),
            Err(response) => response,
        },
        (Method::DELETE, Some(id)) => {
            if notes.exists(&id)? {
                notes.delete(&id)?;
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            } else {
                error(StatusCode::NOT_FOUND, "no such note")
            }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    })
}

atoll_sdk::export!(api);
