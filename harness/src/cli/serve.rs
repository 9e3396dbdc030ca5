//! `faultline serve`: a browsable index of the runs in a store, over a minimal HTTP/1.1
//! server on tokio (GET and HEAD only, one request per connection). Files are served only from
//! inside the store: paths with `..`, and paths whose real location leaves the store, are
//! refused.
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use results::index::{self, Entry};
use results::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{BadInput, Exit};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The store directory.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to listen on. Loopback by default; serving to a network is a deliberate choice.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let root = std::fs::canonicalize(&args.store)
        .map_err(|e| BadInput(format!("--store {}: {e}", args.store.display())))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(args.bind)
            .await
            .map_err(|e| BadInput(format!("--bind {}: {e}", args.bind)))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read the address from this first line (useful with port 0).
        println!("serving {} at http://{addr}/", root.display());
        loop {
            let (stream, _) = listener.accept().await?;
            let root = root.clone();
            tokio::spawn(async move {
                let _ = handle(stream, &root).await;
            });
        }
    })
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }
    fn html(body: String) -> Response {
        Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

async fn handle(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head; bodies are not used (GET and HEAD only).
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return write(&mut stream, Response::text("431 Request Header Fields Too Large", "request head too large\n"), false).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let response = match method {
        "GET" | "HEAD" => respond(root, target),
        _ => Response::text("405 Method Not Allowed", "only GET and HEAD\n"),
    };
    write(&mut stream, response, method == "HEAD").await
}

async fn write(stream: &mut TcpStream, r: Response, head_only: bool) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(&r.body).await?;
    }
    stream.shutdown().await
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file a request path names inside the store, or `None` when it would leave the store.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path)?;
    if !decoded.starts_with('/') || decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let rel = Path::new(&decoded[1..]);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let full = std::fs::canonicalize(root.join(rel)).ok()?;
    full.starts_with(root).then_some(full)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        // Histories, YAML and logs are shown as text, never interpreted by the browser.
        _ => "text/plain; charset=utf-8",
    }
}

fn respond(root: &Path, target: &str) -> Response {
    if target == "/" || target.starts_with("/?") {
        return match Store::new(root).runs() {
            Ok(runs) => Response::html(index::render_index(&runs)),
            Err(e) => Response::text("500 Internal Server Error", &format!("{e}\n")),
        };
    }
    let Some(path) = resolve(root, target) else {
        return Response::text("404 Not Found", "not found in this store\n");
    };
    if path.is_dir() {
        if !target.split('?').next().unwrap_or("").ends_with('/') {
            // Relative links in a listing need the trailing slash.
            return Response {
                status: "404 Not Found",
                content_type: "text/html; charset=utf-8",
                body: b"<a href=\"./\">directory: add a trailing slash</a>".to_vec(),
            };
        }
        let mut entries: Vec<Entry> = match std::fs::read_dir(&path) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let dir = e.path().is_dir();
                    let href = if dir { format!("{name}/") } else { name.clone() };
                    Entry { name, dir, href }
                })
                .collect(),
            Err(e) => return Response::text("500 Internal Server Error", &format!("{e}\n")),
        };
        entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Response::html(index::render_listing(&rel, &entries));
    }
    match std::fs::read(&path) {
        Ok(body) => Response {
            status: "200 OK",
            content_type: content_type(&path),
            body,
        },
        Err(_) => Response::text("404 Not Found", "not found in this store\n"),
    }
}
