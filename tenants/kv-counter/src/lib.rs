//! `kv-counter`: counts visits per path in the tenant's key-value store, atomically. `GET`
//! answers the path's new count; `GET` with `?peek` reads it without counting.

use atoll_sdk::http::StatusCode;
use atoll_sdk::kv::Bucket;
use atoll_sdk::{Request, Response};

fn count(request: Request) -> Result<Response, atoll_sdk::kv::KvError> {
    let bucket = Bucket::open("visits")?;
    let path = request.uri().path().to_owned();
    let visits = if request.uri().query() == Some("peek") {
        bucket
            .get(&path)?
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0)
    } else {
        bucket.increment(&path, 1)?
    };
    let mut response = Response::new(format!("{visits}\n").into());
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

atoll_sdk::export!(count);
