//! The webhook server keeps answering while its serving certificate is rotated: every request
//! succeeds, and new connections see the new certificate.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use body::collect;
use hyper::Request;
use hyper_util::rt::TokioIo;
use support::{NoPolicies, TestWebhook};

/// Reads a whole response body.
mod body {
    use hyper::body::Incoming;
    pub async fn collect(mut body: Incoming) -> Vec<u8> {
        use hyper::body::Body;
        let mut out = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.unwrap().into_data() {
                out.extend_from_slice(&data);
            }
        }
        out
    }
}

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"n","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;

async fn one_request(webhook: &TestWebhook) -> (u16, Vec<u8>, Vec<u8>) {
    let tls = webhook.connect().await;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/mutate-v1-pod")
        .header("content-type", "application/json")
        .body(REVIEW.to_string())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, collect(resp.into_body()).await, leaf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_never_fails_a_request() {
    let mut webhook = TestWebhook::start(Arc::new(NoPolicies)).await;

    let mut leaves = BTreeSet::new();
    let mut ok = 0;
    for round in 0..10 {
        let requests: Vec<_> = (0..20).map(|_| one_request(&webhook)).collect();
        // Rotate while this round's requests are in flight.
        let rotate = async {
            tokio::task::yield_now().await;
            webhook.resolver.set(webhook.issue());
        };
        let (results, ()) = tokio::join!(futures::future::join_all(requests), rotate);
        for (status, body, leaf) in results {
            assert_eq!(status, 200, "round {round}");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["response"]["allowed"], true);
            assert_eq!(v["kind"], "AdmissionReview");
            leaves.insert(leaf);
            ok += 1;
        }
    }
    assert_eq!(ok, 200);
    assert!(
        leaves.len() >= 2,
        "new connections must see rotated certificates ({} seen)",
        leaves.len()
    );
    webhook.shutdown();
    webhook.server.await.unwrap();
}
