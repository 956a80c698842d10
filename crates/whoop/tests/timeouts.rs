//! A WHOOP that accepts the connection and never answers costs a bounded time, not the OS's TCP
//! timeout: every request carries the client's `request_timeout`, and the call ends as
//! "unavailable" after its attempts.

use std::time::Duration;

use whoop::{Client, ClientConfig, Cycle, Error, PageQuery};

#[tokio::test]
async fn a_server_that_never_answers_ends_in_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = Client::new(ClientConfig {
        request_timeout: Duration::from_millis(300),
        max_attempts: 2,
        backoff_base: Duration::from_millis(10),
        ..ClientConfig::new(base)
    })
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        client.page::<Cycle>("token", &PageQuery::default()),
    )
    .await
    .expect("the call ended by itself");
    match outcome {
        Err(Error::Unavailable { attempts, detail }) => {
            assert_eq!(attempts, 2);
            assert_eq!(detail, "timed out");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}
