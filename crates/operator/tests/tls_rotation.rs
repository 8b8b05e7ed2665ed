//! The webhook server keeps answering while its serving certificate is rotated: every request
//! succeeds, and new connections see the new certificate. And a CA rotation, as the operator
//! does it (two replicas maintaining one Secret and one caBundle), fails no admission of the
//! real API server: the caBundle holds the old and the new CA while the replicas move to the
//! new one, and only the new one after the overlap.

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

mod ca {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use kube::Client;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    use model_validation_operator::certs::{self, SelfManaged};
    use model_validation_operator::tls;
    use rustls::pki_types::{CertificateDer, ServerName};
    use serde_json::json;
    use tokio_rustls::TlsConnector;

    use super::support::{NoPolicies, TestWebhook, api_message, wait_for};

    /// Whether a TLS client trusting only `ca_pem` completes a handshake with `addr`: the
    /// replica there serves a certificate of that CA.
    async fn serves_cert_of(addr: std::net::SocketAddr, ca_pem: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        let der: CertificateDer<'static> =
            rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let connector = TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::IpAddress(addr.ip().into());
        connector.connect(name, tcp).await.is_ok()
    }

    /// The caBundle of every webhook of `name` (they must agree).
    async fn bundle(mwc: &Api<MutatingWebhookConfiguration>, name: &str) -> String {
        let c = mwc.get(name).await.unwrap();
        let bundles: Vec<String> = c
            .webhooks
            .unwrap()
            .iter()
            .map(|w| String::from_utf8(w.client_config.ca_bundle.clone().unwrap().0).unwrap())
            .collect();
        assert!(bundles.windows(2).all(|p| p[0] == p[1]), "{bundles:?}");
        bundles[0].clone()
    }

    async fn secret_text(secrets: &Api<Secret>, name: &str, key: &str) -> Option<String> {
        let s = secrets.get(name).await.unwrap();
        let b = s.data?.get(key)?.0.clone();
        Some(String::from_utf8(b).unwrap())
    }

    /// Admissions through webhook `name` the API server counted, by outcome (false: allowed).
    async fn webhook_calls(client: &Client, name: &str) -> (u64, u64) {
        let text = client
            .request_text(hyper::Request::get("/metrics").body(Vec::new()).unwrap())
            .await
            .unwrap();
        let sum = |prefix: &str, also: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(prefix) && l.contains(&format!("name=\"{name}\"")))
                .filter(|l| l.contains(also))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        (
            sum(
                "apiserver_admission_webhook_admission_duration_seconds_count{",
                "rejected=\"false\"",
            ),
            sum("apiserver_admission_webhook_rejection_count{", ""),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ca_rotation_fails_no_admission() {
        test_cluster::install_crypto_provider();
        let cp = test_cluster::shared().await.unwrap();
        let client = cp.client().unwrap();
        let ns = cp.create_namespace("ca-rotation").await.unwrap();
        let secret_name = "webhook-ca";
        let manager = SelfManaged {
            namespace: ns.clone(),
            secret_name: secret_name.into(),
            dns_names: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            lifetime: tls::SERVING_LIFETIME,
            // Long enough not to rotate by age here: the manual trigger rotates it.
            ca_lifetime: Duration::from_secs(3600),
            ca_overlap: Duration::from_secs(12),
        };
        let every = Duration::from_secs(1);

        // Two replicas, each serving a certificate of the CA in the Secret.
        let cas = manager.load_or_rotate(&client, true).await.unwrap();
        let old_ca = cas.current.cert_pem.clone();
        let replicas = [
            TestWebhook::start(Arc::new(NoPolicies)).await,
            TestWebhook::start(Arc::new(NoPolicies)).await,
        ];
        let names = ["a.ca-rotation.test", "b.ca-rotation.test"];
        let config = ns.clone();
        let webhooks: Vec<_> = replicas
            .iter()
            .zip(names)
            .map(|(r, name)| {
                json!({"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
                    "failurePolicy": "Fail", "timeoutSeconds": 10,
                    "clientConfig": {"url": format!("https://{}/mutate-v1-pod", r.addr),
                                     "caBundle": base64(&manager.ca_bundle(&cas))},
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]})
            })
            .collect();
        let mwc = Api::<MutatingWebhookConfiguration>::all(client.clone());
        let cfg: MutatingWebhookConfiguration =
            serde_json::from_value(json!({"metadata": {"name": config}, "webhooks": webhooks}))
                .unwrap();
        mwc.create(&PostParams::default(), &cfg).await.unwrap();
        for r in &replicas {
            let (key, pem) = manager.issue(&cas.current).unwrap();
            r.resolver.set(key);
            tokio::spawn(manager.clone().maintain(
                client.clone(),
                cas.clone(),
                r.resolver.clone(),
                pem,
                Some(config.clone()),
                every,
            ));
        }

        // Pod creates (dry runs) go through both replicas; wait until the API server calls them.
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .unwrap();
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let calls_before = webhook_calls(&client, names[1]).await.0;
        {
            let (pods, pod, dry, client) = (&pods, &pod, &dry, &client);
            wait_for(
                "the API server to call the webhooks",
                Duration::from_secs(30),
                || async move {
                    pods.create(dry, pod).await.ok()?;
                    (webhook_calls(client, names[1]).await.0 > calls_before).then_some(())
                },
            )
            .await;
        }
        let (calls_a, rejections_a) = webhook_calls(&client, names[0]).await;
        let (calls_b, rejections_b) = webhook_calls(&client, names[1]).await;

        // Admissions without a pause, from now until after the old CA has left the bundle.
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn({
            let (pods, pod, dry, stop) = (pods.clone(), pod.clone(), dry.clone(), stop.clone());
            async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match pods.create(&dry, &pod).await {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(api_message(e)),
                    }
                }
                (ok, failed)
            }
        });

        // The manual trigger: remove ca.key.
        let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
        let remove_key = json!([{"op": "remove", "path": format!("/data/{}", certs::CA_KEY)}]);
        secrets
            .patch(
                secret_name,
                &PatchParams::default(),
                &Patch::<()>::Json(serde_json::from_value(remove_key).unwrap()),
            )
            .await
            .unwrap();

        // Overlap: the bundle holds the new CA and the old one.
        let (secrets_ref, mwc_ref, config_ref, old_ref) = (&secrets, &mwc, &config, &old_ca);
        let new_ca = wait_for(
            "a new CA in the Secret",
            Duration::from_secs(30),
            || async move {
                secret_text(secrets_ref, secret_name, certs::CA_CERT)
                    .await
                    .filter(|c| c != old_ref)
            },
        )
        .await;
        assert_eq!(
            secret_text(&secrets, secret_name, certs::PREVIOUS_CA_CERT)
                .await
                .as_deref(),
            Some(old_ca.as_str())
        );
        let both = format!("{new_ca}{old_ca}");
        let want = &both;
        wait_for(
            "the caBundle to hold the new and the old CA",
            Duration::from_secs(30),
            || async move { (bundle(mwc_ref, config_ref).await == *want).then_some(()) },
        )
        .await;
        // Both replicas move to the new CA, while the old one is still in the bundle.
        for r in &replicas {
            let (addr, new_ca) = (r.addr, &new_ca);
            wait_for(
                "a replica to serve a new-CA certificate",
                Duration::from_secs(30),
                || async move { serves_cert_of(addr, new_ca).await.then_some(()) },
            )
            .await;
            assert!(
                !serves_cert_of(r.addr, &old_ca).await,
                "no old-CA certificate any more"
            );
        }
        // After the overlap, only the new CA.
        let new_only = &new_ca;
        wait_for(
            "the old CA to leave the caBundle",
            Duration::from_secs(60),
            || async move { (bundle(mwc_ref, config_ref).await == *new_only).then_some(()) },
        )
        .await;
        // Admissions go on for a few more checks after the drop.
        tokio::time::sleep(3 * every).await;
        stop.store(true, Ordering::Relaxed);
        let (ok, failed) = load.await.unwrap();
        assert!(
            failed.is_empty(),
            "{} of {} admissions failed: {:?}",
            failed.len(),
            ok as usize + failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(ok >= 20, "only {ok} admissions during the rotation");
        // The API server called both replicas for each of them, and none failed.
        let (after_a, rej_a) = webhook_calls(&client, names[0]).await;
        let (after_b, rej_b) = webhook_calls(&client, names[1]).await;
        assert!(
            after_a - calls_a >= ok && after_b - calls_b >= ok,
            "{after_a}-{calls_a}, {after_b}-{calls_b} calls for {ok} admissions"
        );
        assert_eq!(
            (rej_a, rej_b),
            (rejections_a, rejections_b),
            "webhook calls rejected"
        );
        eprintln!("CA rotation: {ok} admissions through 2 replicas, 0 failed");
        mwc.delete(&config, &DeleteParams::default()).await.unwrap();
    }

    fn base64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }
}
