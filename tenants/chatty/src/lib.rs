//! `chatty`: writes to stdout and stderr, for the guest-output logs. `?lines=N` (default 1)
//! writes N lines to each stream, tagged with `?tag=T`; `?kib=K` then writes K KiB more to
//! stdout, to go past the gateway's 64 KiB capture.

use std::io::Write;

use atoll_sdk::Request;

/// Writes the lines the query asks for, then answers with how many it wrote.
fn chatty(request: Request) -> String {
    let query = request.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    let lines: usize = param("lines").and_then(|n| n.parse().ok()).unwrap_or(1);
    let kib: usize = param("kib").and_then(|n| n.parse().ok()).unwrap_or(0);
    let tag = param("tag").unwrap_or("-");
    for i in 0..lines {
        println!("out {i} {tag}");
        eprintln!("err {i} {tag}");
    }
    let filler = [b'x'; 1023];
    let mut stdout = std::io::stdout().lock();
    for _ in 0..kib {
        stdout.write_all(&filler).expect("stdout accepts every write");
        stdout.write_all(b"\n").expect("stdout accepts every write");
    }
    stdout.flush().expect("stdout flushes");
    format!("wrote {lines} lines to each stream and {kib} KiB more\n")
}

atoll_sdk::export!(chatty);
