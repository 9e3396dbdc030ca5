//! The bundled client over a real socket: a scripted node answers each request in a chosen way and
//! the client must record exactly the completion Jepsen's semantics demand.
use checkers::history::OpType;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use workloads::bundled::BundledClient;
use workloads::Invocation;

/// How the scripted node answers one request line.
#[derive(Clone, Copy)]
enum Answer {
    /// Replies with this JSON, `{id}` replaced by the request id.
    Reply(&'static str),
    /// Closes the connection without replying.
    Hang,
    Close,
}

async fn scripted_node(answers: Vec<Answer>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        'conns: while let Ok((stream, _)) = listener.accept().await {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let req: serde_json::Value = serde_json::from_str(&line).unwrap();
                let id = req["id"].as_u64().unwrap();
                match answers.next() {
                    Some(Answer::Reply(t)) => {
                        let text = t.replace("{id}", &id.to_string());
                        w.write_all(format!("{text}\n").as_bytes()).await.unwrap();
                    }
                    Some(Answer::Hang) => {
                        // Keep the connection open and never answer; the client gives up.
                        let _ = lines.next_line().await;
                        continue 'conns;
                    }
                    Some(Answer::Close) | None => continue 'conns,
                }
            }
        }
    });
    addr
}

fn inv(f: &str, key: Option<u64>, value: serde_json::Value) -> Invocation {
    Invocation {
        f: f.into(),
        key: key.map(|k| json!(k)),
        value,
    }
}

#[tokio::test]
async fn replies_map_to_ok_fail_and_info() {
    let addr = scripted_node(vec![
        Answer::Reply(r#"{"id":{id},"ok":true,"value":4}"#),
        Answer::Reply(r#"{"id":{id},"ok":false,"error":{"code":"cas-mismatch","definite":true,"message":"expected 1"}}"#),
        Answer::Reply(r#"{"id":{id},"ok":false,"error":{"code":"timeout","definite":false,"message":"proposed"}}"#),
        Answer::Reply(r#"{"id":{id},"ok":true,"txn":[["r",3,[1,2]],["append",3,5]]}"#),
        Answer::Reply(r#"{"id":{id},"ok":false,"error":{"code":"timeout","definite":false,"message":"proposed"}}"#),
    ])
    .await;
    let mut c = BundledClient::new("n1", addr, Duration::from_secs(5));

    let read = c.invoke(&inv("read", Some(1), json!(null))).await;
    assert_eq!((read.kind, read.value), (OpType::Ok, json!(4)));

    let cas = c.invoke(&inv("cas", Some(1), json!([1, 2]))).await;
    assert_eq!(cas.kind, OpType::Fail, "a definite error is a fail");
    assert!(cas.error.unwrap().starts_with("cas-mismatch"));

    let write = c.invoke(&inv("write", Some(1), json!(3))).await;
    assert_eq!(
        write.kind,
        OpType::Info,
        "an indefinite error on a write is info"
    );

    let txn = c
        .invoke(&inv("txn", None, json!([["r", 3, null], ["append", 3, 5]])))
        .await;
    assert_eq!(
        (txn.kind, txn.value),
        (OpType::Ok, json!([["r", 3, [1, 2]], ["append", 3, 5]]))
    );

    let read2 = c.invoke(&inv("read", Some(2), json!(null))).await;
    assert_eq!(
        read2.kind,
        OpType::Fail,
        "a read cannot have taken effect: indefinite becomes fail"
    );
}

#[tokio::test]
async fn timeouts_and_lost_connections_are_info_for_writes() {
    let addr = scripted_node(vec![
        Answer::Hang,
        Answer::Close,
        Answer::Reply(r#"{"id":{id},"ok":true}"#),
    ])
    .await;
    let mut c = BundledClient::new("n1", addr, Duration::from_millis(300));
    let timed_out = c.invoke(&inv("write", Some(1), json!(3))).await;
    assert_eq!(timed_out.kind, OpType::Info);
    assert!(timed_out.error.unwrap().starts_with("timeout"));
    let lost = c.invoke(&inv("write", Some(1), json!(4))).await;
    assert_eq!(lost.kind, OpType::Info);
    assert!(lost.error.unwrap().starts_with("connection-lost"));
    let ok = c.invoke(&inv("write", Some(1), json!(5))).await;
    assert_eq!(
        ok.kind,
        OpType::Ok,
        "the client reconnects after a transport error"
    );
}

#[tokio::test]
async fn refused_connection_is_a_definite_fail() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = BundledClient::new("n9", format!("127.0.0.1:{port}"), Duration::from_secs(2));
    let done = c.invoke(&inv("write", Some(1), json!(3))).await;
    assert_eq!(done.kind, OpType::Fail);
    assert!(done.error.unwrap().contains("n9"));
}

#[tokio::test]
async fn set_reads_return_the_list() {
    let addr = scripted_node(vec![Answer::Reply(
        r#"{"id":{id},"ok":true,"txn":[["r",0,[0,1,2]]]}"#,
    )])
    .await;
    let mut c = BundledClient::new("n1", addr, Duration::from_secs(5));
    let read = c.invoke(&inv("read", None, json!(null))).await;
    assert_eq!((read.kind, read.value), (OpType::Ok, json!([0, 1, 2])));
}
