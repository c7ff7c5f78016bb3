//! What the proxy logs about requests: one access line per request (target `atoll::access`),
//! and the lines a guest wrote to stdout and stderr (target `atoll::guest`), each with its
//! request id, tenant and function. Field names are listed in `docs/observability.md`.

use std::io::Write as _;
use std::time::Duration;

use crate::log_writer::{self, LogFormat};
use crate::registry::Endpoint;
use crate::runtime::{GUEST_OUTPUT_LIMIT, GuestOutput, GuestStream};

use super::request_id::RequestId;

/// The tracing target of access lines: filter them with `RUST_LOG=atoll::access=off`.
pub const ACCESS_TARGET: &str = "atoll::access";

/// The tracing target of guest output lines.
pub const GUEST_TARGET: &str = "atoll::guest";

/// The status logged for a request whose client went away before the response (nginx's).
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// One request, as its access line tells it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The request id, as sent in `x-request-id`.
    pub request_id: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The `Host` (or URI authority), port and all.
    pub host: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The tenant routed to; empty for a 404 `no_route`.
    pub tenant: &'a str,
    /// The function routed to; empty for a 404 `no_route`.
    pub function: &'a str,
    /// The route that matched, as deployed; empty for a 404 `no_route`.
    pub route: &'a str,
    /// The status the client got ([`CLIENT_CLOSED_STATUS`] when it went away first).
    pub status: u16,
    /// From arrival to the end of the response.
    pub duration: Duration,
    /// Creating the guest's instance; zero when the response is not the guest's.
    pub instantiation: Duration,
}

impl AccessRecord<'_> {
    /// Writes the access line: straight into the log writer's buffer when `atoll serve` set it
    /// up ([`log_writer::write_direct`]), else through `tracing`; the bytes are the same.
    pub fn log(&self) {
        if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
            return;
        }
        let written = log_writer::write_direct(|format, line| match format {
            LogFormat::Json => self.write_json(line),
            LogFormat::Text => self.write_text(line),
        });
        if !written {
            self.log_through_tracing();
        }
    }

    /// The text fields, in the order the formatter writes them.
    fn text_fields(&self) -> [(&'static str, &str); 7] {
        [
            ("request_id", self.request_id),
            ("method", self.method),
            ("host", self.host),
            ("path", self.path),
            ("tenant", self.tenant),
            ("function", self.function),
            ("route", self.route),
        ]
    }

    /// The number fields, after the text ones.
    fn number_fields(&self) -> [(&'static str, u64); 3] {
        [
            ("status", u64::from(self.status)),
            ("duration_us", self.duration.as_micros() as u64),
            ("instantiation_us", self.instantiation.as_micros() as u64),
        ]
    }

    /// The line as the JSON formatter writes it.
    fn write_json(&self, line: &mut Vec<u8>) {
        line.extend_from_slice(b"{\"timestamp\":\"");
        log_writer::write_timestamp(line);
        line.extend_from_slice(br#"","level":"INFO","fields":{"message":"request""#);
        for (name, value) in self.text_fields() {
            line.extend_from_slice(b",\"");
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b"\":");
            json_string(line, value);
        }
        for (name, value) in self.number_fields() {
            line.extend_from_slice(b",\"");
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b"\":");
            line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        line.extend_from_slice(b"},\"target\":\"atoll::access\"}\n");
    }

    /// The line as the text formatter writes it without colours.
    fn write_text(&self, line: &mut Vec<u8>) {
        log_writer::write_timestamp(line);
        line.extend_from_slice(b"  INFO atoll::access: request");
        for (name, value) in self.text_fields() {
            line.push(b' ');
            line.extend_from_slice(name.as_bytes());
            line.push(b'=');
            // The formatter writes strings with `Debug`: quoted, escaped.
            let _ = write!(line, "{value:?}");
        }
        for (name, value) in self.number_fields() {
            line.push(b' ');
            line.extend_from_slice(name.as_bytes());
            line.push(b'=');
            line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        line.push(b'\n');
    }

    fn log_through_tracing(&self) {
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = self.request_id,
            method = self.method,
            host = self.host,
            path = self.path,
            tenant = self.tenant,
            function = self.function,
            route = self.route,
            status = self.status,
            duration_us = self.duration.as_micros() as u64,
            instantiation_us = self.instantiation.as_micros() as u64,
            "request"
        );
    }
}

/// Appends `value` as a JSON string, quoted and escaped.
fn json_string(line: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *line, value);
    }
}

/// Logs what a guest wrote, a line per event, and a warning when some of it was dropped.
pub(super) fn log_guest_output(endpoint: &Endpoint, request_id: &RequestId, output: &GuestOutput) {
    let tenant = endpoint.tenant.name.as_str();
    let function = endpoint.function.name.as_str();
    for stream in [GuestStream::Stdout, GuestStream::Stderr] {
        for line in output.lines(stream) {
            tracing::info!(
                target: GUEST_TARGET,
                request_id = request_id.as_str(),
                tenant,
                function,
                stream = stream.as_str(),
                "{line}"
            );
        }
    }
    if output.dropped_bytes() > 0 {
        tracing::warn!(
            target: GUEST_TARGET,
            request_id = request_id.as_str(),
            tenant,
            function,
            dropped_bytes = output.dropped_bytes(),
            "guest output truncated: only the first {GUEST_OUTPUT_LIMIT} bytes are kept"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a `tracing` subscriber writes, kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The line `tracing`'s formatter writes for `record`.
    fn through_tracing(record: &AccessRecord<'_>, format: LogFormat) -> String {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(captured.clone());
        match format {
            LogFormat::Json => tracing::subscriber::with_default(builder.json().finish(), || {
                record.log_through_tracing()
            }),
            LogFormat::Text => {
                tracing::subscriber::with_default(builder.finish(), || record.log_through_tracing())
            }
        }
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    /// `line` with its timestamp (the first one in it) blanked.
    fn without_time(line: &str) -> String {
        let at = line.find("20").expect("a timestamp");
        format!(
            "{}{}",
            &line[..at],
            &line[at + "2026-12-07T12:09:37.153951Z".len()..]
        )
    }

    #[test]
    fn direct_lines_are_the_formatters_byte_for_byte() {
        let awkward = "/a \"quoted\" \\ path\twith\u{1} control and ünïcode";
        for path in ["/hello", awkward] {
            let record = AccessRecord {
                request_id: "b348b3fdaf131ada21b3601821d2de19",
                method: "GET",
                host: "acme.example.com:8080",
                path,
                tenant: "acme",
                function: "",
                route: "acme.example.com/",
                status: 499,
                duration: Duration::from_micros(5373),
                instantiation: Duration::from_nanos(211_999),
            };
            for format in [LogFormat::Json, LogFormat::Text] {
                let mut direct = Vec::new();
                match format {
                    LogFormat::Json => record.write_json(&mut direct),
                    LogFormat::Text => record.write_text(&mut direct),
                }
                let direct = String::from_utf8(direct).unwrap();
                let expected = through_tracing(&record, format);
                assert_eq!(without_time(&direct), without_time(&expected), "{format:?}");
                assert!(direct.ends_with('\n') && direct.matches('\n').count() == 1);
            }
        }
    }

    #[test]
    fn timestamps_read_as_the_formatters() {
        let mut line = Vec::new();
        log_writer::write_timestamp(&mut line);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text.len(), 27, "{text}");
        let parsed =
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339);
        assert!(parsed.is_ok(), "{text}: {parsed:?}");
    }
}
