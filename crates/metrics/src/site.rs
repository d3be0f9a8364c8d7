//! The site: tiny_http parses each request the door hands over and writes
//! the answer: `/metrics` in the format the scraper asked for, `/status`
//! for a person, `/` naming both. One thread answers them in turn; the
//! door's cap bounds how many wait.

use std::io;
use std::os::unix::net::UnixListener;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::endpoint::{Pages, reason};
use crate::format::Format;

/// Starts the answering thread.
pub(crate) fn start(listener: UnixListener, pages: Pages) -> io::Result<()> {
    let first = listener.try_clone()?;
    thread::Builder::new()
        .name("metrics-site".into())
        .spawn(move || {
            let mut accepting = Some(first);
            loop {
                // tiny_http's accept thread ends at its first accept error;
                // its server then only reports it. A new server on the same
                // socket takes over, so /metrics never goes quiet for good.
                let socket = match accepting.take() {
                    Some(socket) => socket,
                    None => match listener.try_clone() {
                        Ok(socket) => socket,
                        Err(e) => {
                            tracing::warn!("metrics endpoint: {}", reason(&e));
                            thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    },
                };
                let server = match Server::from_listener(socket, None) {
                    Ok(server) => server,
                    Err(e) => {
                        tracing::warn!("metrics endpoint: cannot serve: {e}");
                        thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                loop {
                    match server.recv() {
                        Ok(request) => answer(request, &pages),
                        Err(e) => {
                            tracing::warn!("metrics endpoint: {}; restarting it", reason(&e));
                            thread::sleep(Duration::from_millis(100));
                            break;
                        }
                    }
                }
            }
        })?;
    Ok(())
}

/// A page: status, content type, body.
type Page = (u16, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";

fn answer(request: Request, pages: &Pages) {
    let accept = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_owned());
    let method = request.method().clone();
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    // A page that panics (a bug in a collector) is a 500, not the end of
    // the endpoint.
    let (status, content_type, body) = panic::catch_unwind(AssertUnwindSafe(|| {
        route(&method, &path, accept.as_deref(), pages)
    }))
    .unwrap_or_else(|_| (500, TEXT, "the page failed; see the program's log\n".into()));
    let mut response = Response::from_string(body)
        .with_status_code(status)
        .with_chunked_threshold(usize::MAX);
    if let Ok(header) = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        response.add_header(header);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!("metrics endpoint: answer not sent: {}", reason(&e));
    }
}

fn route(method: &Method, path: &str, accept: Option<&str>, pages: &Pages) -> Page {
    if !matches!(method, Method::Get | Method::Head) {
        return (405, TEXT, "only GET and HEAD\n".into());
    }
    match path {
        "/metrics" => {
            let format = Format::from_accept(accept);
            match format.encode(&pages.registry) {
                Ok(text) => (200, format.content_type(), text),
                Err(_) => (500, TEXT, "the metrics could not be written\n".into()),
            }
        }
        "/status" => (200, TEXT, (pages.status)()),
        "/" => (
            200,
            TEXT,
            "/metrics  metrics for Prometheus\n/status   a summary to read\n".into(),
        ),
        _ => (404, TEXT, "not here: try /metrics or /status\n".into()),
    }
}
