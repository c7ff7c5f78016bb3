//! The logs of the `atoll serve` binary: one access line per request, and what guests write to
//! stdout and stderr, each line with its tenant, function and request id, bounded per request.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Served, tenant_wasm};

const WAIT: Duration = Duration::from_secs(30);

fn tenants() -> String {
    let chatty = tenant_wasm("chatty");
    let trap = tenant_wasm("trap");
    format!(
        r#"
tenants:
  acme:
    hosts: [acme.test]
    functions:
      chatty: {{wasm: {chatty}, routes: [acme.test/chatty]}}
      trap: {{wasm: {trap}, routes: [acme.test/trap]}}
  globex:
    hosts: [globex.test]
    functions:
      talker: {{wasm: {chatty}, routes: [globex.test/]}}
"#,
        chatty = chatty.display(),
        trap = trap.display(),
    )
}

fn serve(extra: &str) -> Served {
    Served::start_in(
        tempfile::tempdir().unwrap(),
        &format!("{extra}{}", tenants()),
    )
}

/// `GET http://{host}{path}` with `x-request-id: {id}`, to send.
fn request(served: &Served, host: &str, path: &str, id: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("http://{}{path}", served.proxy))
        .header("host", host)
        .header("x-request-id", id)
}

/// Sends `GET http://{host}{path}` with `x-request-id: {id}`; returns the status.
async fn get(served: &Served, host: &str, path: &str, id: &str) -> u16 {
    request(served, host, path, id)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn is_access(event: &Value, id: &str) -> bool {
    event["target"] == "atoll::access" && event["fields"]["request_id"] == id
}

fn is_guest(event: &Value, id: &str) -> bool {
    event["target"] == "atoll::guest" && event["fields"]["request_id"] == id
}

#[test]
fn every_request_has_one_access_line() {
    let served = serve("");
    let runtime = runtime();
    runtime.block_on(async {
        assert_eq!(
            get(&served, "acme.test", "/chatty?x=1", "req-ok").await,
            200
        );
        assert_eq!(get(&served, "acme.test", "/trap", "req-trap").await, 500);
        assert_eq!(
            get(&served, "nobody.test", "/nowhere", "req-404").await,
            404
        );
    });

    let ok = served.log.wait_for(WAIT, |e| is_access(e, "req-ok"));
    let ok = &ok.expect("an access line for req-ok")["fields"];
    assert_eq!(ok["message"], "request");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["host"], "acme.test");
    assert_eq!(ok["path"], "/chatty", "the query is left out");
    assert_eq!(ok["tenant"], "acme");
    assert_eq!(ok["function"], "chatty");
    assert_eq!(ok["route"], "acme.test/chatty");
    assert_eq!(ok["status"], 200);
    assert!(ok["duration_us"].as_u64().unwrap() > 0, "{ok}");
    let instantiation = ok["instantiation_us"].as_u64().unwrap();
    assert!(instantiation <= ok["duration_us"].as_u64().unwrap(), "{ok}");

    let trap = served.log.wait_for(WAIT, |e| is_access(e, "req-trap"));
    let trap = &trap.expect("an access line for req-trap")["fields"];
    assert_eq!(trap["tenant"], "acme");
    assert_eq!(trap["function"], "trap");
    assert_eq!(trap["status"], 500);

    let missing = served.log.wait_for(WAIT, |e| is_access(e, "req-404"));
    let missing = &missing.expect("an access line for req-404")["fields"];
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["tenant"], "");
    assert_eq!(missing["host"], "nobody.test");

    for id in ["req-ok", "req-trap", "req-404"] {
        let lines = served.log.matching(|e| is_access(e, id));
        assert_eq!(lines.len(), 1, "exactly one access line for {id}");
    }
}

#[test]
fn guest_output_is_logged_per_request_with_tenant_and_request_id() {
    const LINES: usize = 40;
    const REQUESTS: usize = 24;
    let served = serve("");
    let runtime = runtime();
    let requests: Vec<(String, &str, &str)> = (0..REQUESTS)
        .map(|i| {
            let (host, path) = if i % 2 == 0 {
                ("acme.test", "/chatty")
            } else {
                ("globex.test", "/")
            };
            (format!("chatty-{i}"), host, path)
        })
        .collect();
    // All at once, so that guests of both tenants write at the same time.
    runtime.block_on(async {
        let mut sends = tokio::task::JoinSet::new();
        for (id, host, path) in &requests {
            let url = format!("http://{}{path}?lines={LINES}&tag={id}", served.proxy);
            let (id, host) = (id.clone(), host.to_string());
            sends.spawn(async move {
                let response = reqwest::Client::new()
                    .get(url)
                    .header("host", host)
                    .header("x-request-id", id)
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            });
        }
        while let Some(status) = sends.join_next().await {
            assert_eq!(status.unwrap(), 200);
        }
    });

    for (id, host, _) in &requests {
        let lines = served
            .log
            .wait_for_count(WAIT, 2 * LINES, |e| is_guest(e, id));
        assert_eq!(lines.len(), 2 * LINES, "every line of {id}");
        let (tenant, function) = if *host == "acme.test" {
            ("acme", "chatty")
        } else {
            ("globex", "talker")
        };
        for stream in ["stdout", "stderr"] {
            let prefix = if stream == "stdout" { "out" } else { "err" };
            let texts: Vec<String> = lines
                .iter()
                .map(|e| &e["fields"])
                .filter(|f| f["stream"] == stream)
                .inspect(|f| {
                    assert_eq!(f["tenant"], tenant);
                    assert_eq!(f["function"], function);
                })
                .map(|f| f["message"].as_str().unwrap().to_owned())
                .collect();
            let expected: Vec<String> = (0..LINES).map(|i| format!("{prefix} {i} {id}")).collect();
            assert_eq!(texts, expected, "{id}'s {stream}, in order, nobody else's");
        }
    }
}

#[test]
fn guest_output_past_64_kib_is_cut_and_marked() {
    let served = serve("");
    let runtime = runtime();
    runtime.block_on(async {
        let status = get(&served, "acme.test", "/chatty?lines=1&kib=100", "flood").await;
        assert_eq!(status, 200, "a guest that talks too much still answers");
    });
    let marker = served.log.wait_for(WAIT, |e| {
        is_guest(e, "flood") && e["fields"]["dropped_bytes"].is_u64()
    });
    let marker = marker.expect("a truncation marker");
    assert_eq!(marker["level"], "WARN");
    assert_eq!(marker["fields"]["tenant"], "acme");
    let lines = served
        .log
        .matching(|e| is_guest(e, "flood") && e["fields"]["stream"].is_string());
    let kept: usize = lines
        .iter()
        .map(|e| e["fields"]["message"].as_str().unwrap().len() + 1)
        .sum();
    let written = "out 0 -\n".len() + "err 0 -\n".len() + 100 * 1024;
    let dropped = marker["fields"]["dropped_bytes"].as_u64().unwrap() as usize;
    assert_eq!(dropped, written - 64 * 1024, "the first 64 KiB are kept");
    // The last kept line was cut mid-way: it has no newline of its own.
    assert_eq!(kept, 64 * 1024 + 1, "the kept bytes are all logged");
}

#[test]
fn access_lines_and_request_metrics_can_be_switched_off() {
    let served = serve("observability: {access_log: off, metrics: off}\n");
    let runtime = runtime();
    let metrics = runtime.block_on(async {
        assert_eq!(get(&served, "acme.test", "/chatty", "quiet").await, 200);
        reqwest::get(format!("http://{}/metrics", served.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    // Guest output is still logged; it comes after the response, so wait for it.
    let output = served.log.wait_for(WAIT, |e| is_guest(e, "quiet"));
    assert!(output.is_some(), "guest output is logged regardless");
    assert!(served.log.matching(|e| is_access(e, "quiet")).is_empty());
    let served_ok = metrics.lines().find(|l| {
        l.starts_with(r#"atoll_requests_total{code="200",function="chatty",tenant="acme"}"#)
    });
    assert!(
        served_ok.is_none_or(|l| l.ends_with(" 0")),
        "the request is not counted: {served_ok:?}"
    );
    assert!(metrics.contains("atoll_functions_loaded 3"), "{metrics}");
}

/// A one-response HTTP/1.1 origin on an ephemeral loopback port: answers `200 ok` to every
/// request, on a thread of its own, for as long as the test runs.
fn start_origin() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    address
}

/// The value of one series in Prometheus text, 0 when it is absent.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn every_path_writes_one_access_line_and_counts_its_code() {
    let origin = start_origin();
    let wasm = |name: &str| tenant_wasm(name).display().to_string();
    let served = Served::start_in(
        tempfile::tempdir().unwrap(),
        &format!(
            r#"
response_body: 1MiB
tenants:
  paths:
    hosts: [paths.test]
    functions:
      cached: {{wasm: {cached}, routes: [paths.test/cached]}}
      sleepy: {{wasm: {sleepy}, routes: [paths.test/sleepy]}}
      bigbody: {{wasm: {bigbody}, routes: [paths.test/big]}}
    origins:
      up: {{url: "http://{origin}", routes: [paths.test/up]}}
      down: {{url: "http://127.0.0.1:1", routes: [paths.test/down], connect_timeout: 2s}}
  limited:
    hosts: [limited.test]
    limits: {{rate: 1}}
    functions:
      chatty: {{wasm: {chatty}, routes: [limited.test/]}}
"#,
            cached = wasm("cached"),
            sleepy = wasm("sleepy"),
            bigbody = wasm("bigbody"),
            chatty = wasm("chatty"),
        ),
    );
    let runtime = runtime();
    runtime.block_on(async {
        // A miss, then a hit from the cache.
        assert_eq!(get(&served, "paths.test", "/cached", "miss").await, 200);
        assert_eq!(get(&served, "paths.test", "/cached", "hit").await, 200);
        assert_eq!(get(&served, "paths.test", "/up", "origin").await, 200);
        assert_eq!(
            get(&served, "paths.test", "/down", "origin-down").await,
            502
        );
        assert_eq!(get(&served, "limited.test", "/", "admitted").await, 200);
        assert_eq!(get(&served, "limited.test", "/", "limited").await, 429);

        // A client that leaves while its guest sleeps.
        let gone = request(&served, "paths.test", "/sleepy?ms=5000", "gone")
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        assert!(gone.is_err(), "the client gave up first");

        // A stream cut when it passes the gateway's 1 MiB cap, after its head went out.
        let cut = request(&served, "paths.test", "/big?mib=3", "cut")
            .send()
            .await
            .unwrap();
        assert_eq!(cut.status(), 200);
        assert!(cut.bytes().await.is_err(), "the body must not end cleanly");
    });

    let expected = [
        ("miss", 200),
        ("hit", 200),
        ("origin", 200),
        ("origin-down", 502),
        ("admitted", 200),
        ("limited", 429),
        ("gone", 499),
        ("cut", 200),
    ];
    for (id, status) in expected {
        let line = served.log.wait_for(WAIT, |e| is_access(e, id));
        let line = line.unwrap_or_else(|| panic!("an access line for {id}"));
        assert_eq!(line["fields"]["status"], status, "{id}: {line}");
    }
    let cut = served.log.wait_for(WAIT, |e| {
        e["fields"]["message"] == "response cut short" && e["fields"]["request_id"] == "cut"
    });
    assert!(cut.is_some(), "the cut is logged with its request id");

    let metrics = runtime.block_on(async {
        reqwest::get(format!("http://{}/metrics", served.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let requests = |tenant: &str, function: &str, code: &str| {
        series(
            &metrics,
            &format!(
                r#"atoll_requests_total{{code="{code}",function="{function}",tenant="{tenant}"}}"#
            ),
        )
    };
    assert_eq!(requests("paths", "cached", "200"), 2.0, "{metrics}");
    assert_eq!(requests("paths", "up", "200"), 1.0, "{metrics}");
    assert_eq!(requests("paths", "down", "502"), 1.0, "{metrics}");
    assert_eq!(requests("limited", "chatty", "200"), 1.0, "{metrics}");
    assert_eq!(requests("limited", "chatty", "429"), 1.0, "{metrics}");
    assert_eq!(requests("paths", "sleepy", "499"), 1.0, "{metrics}");
    assert_eq!(requests("paths", "bigbody", "200"), 1.0, "{metrics}");
    assert_eq!(
        series(
            &metrics,
            r#"atoll_limit_rejections_total{limit="rate",tenant="limited"}"#
        ),
        1.0,
        "counted once: {metrics}"
    );

    for (id, _) in expected {
        let lines = served.log.matching(|e| is_access(e, id));
        assert_eq!(
            lines.len(),
            1,
            "exactly one access line for {id}: {lines:?}"
        );
    }
}
