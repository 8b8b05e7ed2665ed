//! On shutdown the webhook server stops accepting connections but finishes the admissions
//! already in flight.
//!
//! Deterministic, not timed: the policy lookup of the admission blocks until the test has
//! started the shutdown, so the request is provably being handled when shutdown starts.

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model_validation_operator::names::LABEL;
use model_validation_operator::webhook::{FoundPolicy, Policies};
use serde_json::json;
use support::{TestWebhook, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// How long a held lookup waits for the test before giving up (so a broken test fails instead
/// of hanging).
const HOLD_AT_MOST: Duration = Duration::from_secs(30);

/// Policies whose first lookup tells the test it has begun and then waits for its release.
/// The namespace is "ignored", so the held admission is allowed unchanged.
struct Gate {
    entered: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Gate {
    fn hold(&self) {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            let _ = entered.send(());
            self.release
                .lock()
                .unwrap()
                .recv_timeout(HOLD_AT_MOST)
                .expect("the test releases the held admission");
        }
    }
}

impl Policies for Gate {
    fn get(&self, _: &str, _: &str) -> Option<FoundPolicy> {
        self.hold();
        None
    }
    fn in_namespace(&self, _: &str) -> Vec<FoundPolicy> {
        self.hold();
        Vec::new()
    }
    fn namespace_ignored(&self, _: &str) -> bool {
        self.hold();
        true
    }
}

/// A labelled pod (so the webhook has to look at the cluster) in namespace `n`.
fn review() -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "drain-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "n", "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "p", "labels": {LABEL: "m"}},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}
        }
    })
    .to_string()
}

// Three workers: the held lookup blocks one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn in_flight_admission_is_answered_after_shutdown_starts() {
    let (entered_tx, entered) = oneshot::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(release_rx),
    };
    let mut webhook = TestWebhook::start(Arc::new(gate)).await;
    let mut tls = webhook.connect().await;
    let review = review();
    let head = format!(
        "POST /mutate-v1-pod HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        review.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(review.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), entered)
        .await
        .expect("the admission reaches the policy lookup")
        .unwrap();

    // The request is held in its lookup: now shut down.
    webhook.shutdown();
    let addr = webhook.addr;
    wait_for(
        "the listener to close once shutdown started",
        Duration::from_secs(10),
        || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    assert!(
        !webhook.server.is_finished(),
        "the server must wait for the request in flight"
    );
    release.send(()).unwrap();

    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\"uid\":\"drain-1\"") && text.contains("\"allowed\":true"),
        "{text}"
    );
    tokio::time::timeout(Duration::from_secs(10), webhook.server)
        .await
        .expect("server exits after draining")
        .unwrap();
}
