//! `greedy`: asks the host for more than it should give and reports what it got, as
//! `resources=N fields=ok|refused random=ok|refused`: it makes `fields` resources until the
//! host refuses one (or 50,000, if it never does), appends a 100 KiB header value, and asks
//! for 8 MiB of random bytes. Atoll bounds each (docs/limits.md).

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Component;

/// Resources made before the host refused one.
fn hoard() -> usize {
    let mut held = Vec::new();
    while held.len() < 50_000 {
        // `Fields::new` has no error to give: the host traps the guest when its table is full,
        // so probe with a call that can fail instead.
        match Fields::from_list(&[("x".to_owned(), b"y".to_vec())]) {
            Ok(fields) => held.push(fields),
            Err(_) => break,
        }
    }
    held.len()
}

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let what = request.path_with_query().unwrap_or_default();
        let report = if what.contains("resources") {
            format!("resources={}", hoard())
        } else if what.contains("fields") {
            let fields = Fields::new();
            let big = vec![b'a'; 100 << 10];
            let ok = fields.append("x-big", &big).is_ok();
            format!("fields={}", if ok { "ok" } else { "refused" })
        } else {
            let bytes = wasip2::random::random::get_random_bytes(8 << 20);
            format!("random={}", bytes.len())
        };
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("the body's stream");
        stream
            .blocking_write_and_flush(report.as_bytes())
            .expect("writing the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finishing the body");
    }
}

wasip2::http::proxy::export!(Component with_types_in wasip2);
