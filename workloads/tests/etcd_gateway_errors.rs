//! The etcd client against a scripted HTTP gateway on 127.0.0.1: error bodies of both gateway
//! generations (etcd 3.4 `{"error","code","message"}`, 3.5+ `{"code","message","details"}`) and
//! unreadable replies map to the completions the module doc's table promises.
use checkers::history::OpType;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use workloads::etcd::{EtcdClient, ReadMode};
use workloads::Invocation;

/// Answers the i-th request with `replies[i]` (status, body), one connection after another.
async fn scripted_gateway(replies: Vec<(u16, &'static str)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        while let Ok((stream, _)) = listener.accept().await {
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                if line.is_empty() {
                    break;
                }
                let mut body = vec![0; length];
                r.read_exact(&mut body).await.unwrap();
                let Some((status, text)) = replies.next() else {
                    return;
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                    text.len()
                );
                w.write_all(reply.as_bytes()).await.unwrap();
            }
        }
    });
    addr
}

fn inv(f: &str, value: Value) -> Invocation {
    Invocation {
        f: f.into(),
        key: Some(json!(1)),
        value,
    }
}

#[tokio::test]
async fn gateway_error_bodies_map_to_fail_or_info() {
    let cases: Vec<(u16, &'static str, OpType, OpType)> = vec![
        // (status, body, completion of a write, completion of a read)
        (
            503,
            r#"{"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"}"#,
            OpType::Info,
            OpType::Fail,
        ),
        (
            503,
            r#"{"code":14,"message":"etcdserver: leader changed","details":[]}"#,
            OpType::Info,
            OpType::Fail,
        ),
        (
            400,
            r#"{"code":3,"message":"etcdserver: request is too large","details":[]}"#,
            OpType::Fail,
            OpType::Fail,
        ),
        (
            429,
            r#"{"error":"etcdserver: too many requests","code":8}"#,
            OpType::Fail,
            OpType::Fail,
        ),
        (
            500,
            r#"{"error":"etcdserver: corrupt cluster","code":15}"#,
            OpType::Info,
            OpType::Fail,
        ),
        (502, "<html>bad gateway</html>", OpType::Info, OpType::Fail),
        (404, "404 page not found", OpType::Fail, OpType::Fail),
        (200, "not json", OpType::Info, OpType::Fail),
    ];
    for (status, body, on_write, on_read) in cases {
        let addr = scripted_gateway(vec![(status, body), (status, body)]).await;
        let mut c = EtcdClient::new("n1", &addr, Duration::from_secs(5), ReadMode::Linearizable);
        let w = c.invoke(&inv("write", json!(3))).await;
        assert_eq!(w.kind, on_write, "write, {status} {body}: {:?}", w.error);
        assert!(w.error.as_deref().unwrap().contains("n1"));
        let r = c.invoke(&inv("read", Value::Null)).await;
        assert_eq!(r.kind, on_read, "read, {status} {body}: {:?}", r.error);
    }
}

#[tokio::test]
async fn replies_of_the_right_shape_are_read() {
    let addr = scripted_gateway(vec![
        // A range with one kv ("3" in base64 is "Mw==").
        (
            200,
            r#"{"header":{"revision":"5"},"kvs":[{"key":"ZmwvMQ==","mod_revision":"5","value":"Mw=="}],"count":"1"}"#,
        ),
        // proto3 JSON leaves out `succeeded: false`.
        (200, r#"{"header":{"revision":"5"}}"#),
        (200, r#"{"header":{"revision":"6"},"succeeded":true}"#),
        // A kv whose value is not JSON: someone else wrote the key.
        (
            200,
            r#"{"kvs":[{"key":"ZmwvMQ==","mod_revision":"7","value":"eHl6"}]}"#,
        ),
    ])
    .await;
    let mut c = EtcdClient::new("n1", &addr, Duration::from_secs(5), ReadMode::Serializable);
    let r = c.invoke(&inv("read", Value::Null)).await;
    assert_eq!((r.kind, r.value), (OpType::Ok, json!(3)));
    let cas = c.invoke(&inv("cas", json!([1, 2]))).await;
    assert_eq!(cas.kind, OpType::Fail);
    assert!(cas.error.unwrap().starts_with("cas-mismatch"));
    let cas = c.invoke(&inv("cas", json!([3, 4]))).await;
    assert_eq!(cas.kind, OpType::Ok);
    let r = c.invoke(&inv("read", Value::Null)).await;
    assert_eq!(r.kind, OpType::Fail);
    assert!(r.error.unwrap().contains("not JSON"));
}
