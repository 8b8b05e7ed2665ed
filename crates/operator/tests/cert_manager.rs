//! The Helm chart's `certificates.mode: certManager` with a real cert-manager: its controller and
//! CA injector (built from the cert-manager Go module by `hack/testbin/build.sh`) run beside the
//! test control plane, with cert-manager's own CRDs.
//!
//! What the chart promises in this mode (docs/helm.md), checked end to end: its self-signed
//! Issuer and Certificate are accepted by cert-manager's schemas and issued; the Secret holds a
//! certificate for the webhook Service's DNS names; the CA injector writes that CA into every
//! webhook of the MutatingWebhookConfiguration; the Deployment hands the Secret to the operator
//! with `--cert-dir` (so the operator manages no CA of its own); and the operator, serving that
//! key pair, is trusted by a client that trusts only the injected caBundle under the Service's
//! name, as the API server will be. The twin: a client trusting that bundle refuses a server
//! with another self-signed certificate for the same names.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{
    NoPolicies, OPERATOR_NAMESPACE, Operator, OperatorOptions, TestWebhook, apply_doc,
    established_and_discovered, helm_install, parse_docs, testbin_tool, wait_for,
};
use test_cluster::support::spawn_tied;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The chart's objects in this mode (templates/certificate.yaml, webhook.yaml, _helpers.tpl).
const CERTIFICATE: &str = "model-validation-operator-webhook";
const TLS_SECRET: &str = "model-validation-operator-webhook-tls";
const WEBHOOK_CONFIG: &str = "model-validation-operator";
const CERT_DIR: &str = "/etc/model-validation-operator/tls";
const SERVICE: &str = "model-validation-webhook";

/// The DNS names the chart's Certificate asks for: the webhook Service's.
fn service_names(ns: &str) -> Vec<String> {
    vec![
        format!("{SERVICE}.{ns}.svc"),
        format!("{SERVICE}.{ns}.svc.cluster.local"),
    ]
}

/// A cert-manager process, its output in a log file; killed when dropped (and with the test
/// process, through [`spawn_tied`]).
struct CertManagerProcess {
    name: &'static str,
    child: Mutex<Child>,
    log: PathBuf,
}

impl CertManagerProcess {
    fn start(name: &'static str, args: &[String]) -> CertManagerProcess {
        let log = std::env::temp_dir().join(format!("mvo-test-{name}-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let child = spawn_tied(&testbin_tool(name), |cmd| {
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out);
        })
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        CertManagerProcess {
            name,
            child: Mutex::new(child),
            log,
        }
    }

    /// Panics with the end of its log once it has exited: a crash fails a wait at once, with
    /// the reason, instead of by timeout.
    fn assert_running(&self) {
        let status = self.child.lock().unwrap().try_wait().unwrap();
        if let Some(status) = status {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{} exited with {status}; end of {}:\n{}",
                self.name,
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Drop for CertManagerProcess {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// cert-manager's CRDs, as `hack/testbin/build.sh` copied them from the release's module.
fn cert_manager_crds() -> Vec<serde_json::Value> {
    let dir = test_cluster::testbin_dir().join("cert-manager-crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run hack/testbin/build.sh to copy cert-manager's CRDs",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let docs: Vec<_> = files
        .iter()
        .flat_map(|f| parse_docs(&std::fs::read_to_string(f).unwrap()))
        .collect();
    assert!(
        docs.iter()
            .any(|d| d["metadata"]["name"] == "certificates.cert-manager.io"),
        "no Certificate CRD in {}",
        dir.display()
    );
    docs
}

/// A TLS client that trusts only the certificates of `roots_pem`.
fn client_trusting(roots_pem: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(roots_pem) {
        roots.add(der.unwrap()).unwrap();
    }
    assert!(!roots.is_empty(), "no certificate in the trusted PEM");
    TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// POSTs an AdmissionReview of an unlabelled pod to `/mutate-v1-pod` at `port` over TLS with
/// SNI `name`, as the API server calls the Service; returns the HTTP response, or the TLS error.
async fn admission_over_tls(
    client: &TlsConnector,
    port: u16,
    name: &str,
    ns: &str,
) -> Result<String, std::io::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = client
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await?;
    let body = support::attack::unlabelled_review("cert-manager-review", ns);
    let request = format!(
        "POST /mutate-v1-pod HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// The DNS names of the first certificate of `pem`.
fn dns_names(pem: &[u8]) -> Vec<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert
        .subject_alternative_name()
        .unwrap()
        .expect("the certificate has no subjectAltName");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_manager_issues_and_injects_the_webhook_certificate_the_operator_serves() {
    let began = Instant::now();
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let kubeconfig = cp.kubeconfig_path();
    let ns = OPERATOR_NAMESPACE;
    let phase = |what: &str| eprintln!("[{:>5.1} s] {what}", began.elapsed().as_secs_f64());
    phase("control plane ready");

    // cert-manager's CRDs, then its controller and CA injector.
    let crds = cert_manager_crds();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for crd in &crds {
        apply_doc(&client, &discovery, crd, "cert-manager-test").await;
    }
    for crd in &crds {
        established_and_discovered(&client, crd).await;
    }
    phase("cert-manager CRDs served");
    let kubeconfig_arg = format!("--kubeconfig={}", kubeconfig.display());
    let controller = CertManagerProcess::start(
        "cert-manager-controller",
        &[
            kubeconfig_arg.clone(),
            // Where ClusterIssuers' Secrets would live; none here, but never kube-system.
            format!("--cluster-resource-namespace={ns}"),
            "--leader-elect=false".into(),
        ],
    );
    let cainjector = CertManagerProcess::start(
        "cert-manager-cainjector",
        &[kubeconfig_arg, "--leader-elect=false".into()],
    );
    let running = || {
        controller.assert_running();
        cainjector.assert_running();
    };

    // The chart in certManager mode.
    let values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(values.path(), "certificates:\n  mode: certManager\n").unwrap();
    let notes = helm_install(kubeconfig, "mvo", ns, &[values.path()]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    phase("chart installed");

    // The Certificate becomes Ready.
    let gvk = GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate");
    let certificates: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "certificates"),
    );
    let what = format!(
        "Certificate {ns}/{CERTIFICATE} to be Ready (logs: {}, {})",
        controller.log.display(),
        cainjector.log.display()
    );
    wait_for(&what, Duration::from_secs(60), || {
        running();
        let certificates = certificates.clone();
        async move {
            let c = certificates.get_opt(CERTIFICATE).await.ok()??;
            c.data["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                .then_some(())
        }
    })
    .await;
    phase("Certificate Ready");

    // Its Secret: a key pair for the Service's DNS names, and the CA (the self-signed Issuer's
    // certificate is its own CA).
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(TLS_SECRET)
        .await
        .unwrap();
    let data = secret.data.unwrap_or_default();
    let item = |k: &str| {
        data.get(k)
            .unwrap_or_else(|| panic!("Secret {TLS_SECRET} has no {k}"))
            .0
            .clone()
    };
    let (tls_crt, tls_key, ca_crt) = (item("tls.crt"), item("tls.key"), item("ca.crt"));
    let mut names = dns_names(&tls_crt);
    names.sort();
    assert_eq!(names, service_names(ns), "SANs of {TLS_SECRET}'s tls.crt");
    assert!(!ca_crt.is_empty(), "{TLS_SECRET}'s ca.crt is empty");

    // The CA injector writes ca.crt into every webhook of the configuration.
    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let what = format!(
        "the CA injector to write {TLS_SECRET}'s ca.crt into every webhook of {WEBHOOK_CONFIG} \
         (log: {})",
        cainjector.log.display()
    );
    let ca_bundle = wait_for(&what, Duration::from_secs(30), || {
        running();
        let (configs, ca_crt) = (configs.clone(), ca_crt.clone());
        async move {
            let webhooks = configs.get(WEBHOOK_CONFIG).await.ok()?.webhooks?;
            let bundles: Vec<_> = webhooks
                .iter()
                .map(|w| w.client_config.ca_bundle.as_ref().map(|b| b.0.clone()))
                .collect();
            (bundles.len() == 4 && bundles.iter().all(|b| b.as_ref() == Some(&ca_crt)))
                .then_some(ca_crt)
        }
    })
    .await;
    phase("caBundle injected");

    // The Deployment hands that Secret to the operator by --cert-dir, so the operator manages
    // no CA of its own: the self-managed mode's CA Secret is not rendered.
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("model-validation-operator")
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let args = pod.containers[0].args.clone().unwrap_or_default();
    assert!(
        args.contains(&format!("--cert-dir={CERT_DIR}")),
        "no --cert-dir={CERT_DIR} in {args:?}"
    );
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| m.mount_path == CERT_DIR)
        .unwrap_or_else(|| panic!("nothing mounted at {CERT_DIR}: {mounts:?}"));
    let volume = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(
        volume.secret.and_then(|s| s.secret_name).as_deref(),
        Some(TLS_SECRET)
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let ca_secret = "model-validation-operator-webhook-ca";
    assert!(secrets.get_opt(ca_secret).await.unwrap().is_none());

    // The operator as the Deployment runs it: the issued key pair in its cert dir.
    let cert_dir = tempfile::tempdir().unwrap();
    for (file, bytes) in [("tls.crt", &tls_crt), ("tls.key", &tls_key)] {
        std::fs::File::create(cert_dir.path().join(file))
            .and_then(|mut f| f.write_all(bytes))
            .unwrap();
    }
    let mut opts = OperatorOptions::new("mvo-cert-manager");
    opts.namespace = Some(ns.into());
    opts.extra_args = vec!["--cert-dir".into(), cert_dir.path().display().to_string()];
    let operator = Operator::start(kubeconfig, opts).await;
    phase("operator serving the issued certificate");

    // A client trusting only the injected caBundle, naming the Service as the API server does,
    // gets the webhook's answer.
    let trusts_bundle = client_trusting(&ca_bundle);
    let service = &service_names(ns)[0];
    let response = admission_over_tls(&trusts_bundle, operator.webhook, service, ns)
        .await
        .unwrap_or_else(|e| panic!("TLS to the operator as {service}: {e}"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"uid\":\"cert-manager-review\"")
            && response.contains("\"allowed\":true"),
        "{response}"
    );
    // In this mode the operator leaves the caBundle and the CA Secret to cert-manager.
    assert!(secrets.get_opt(ca_secret).await.unwrap().is_none());
    let webhooks = configs.get(WEBHOOK_CONFIG).await.unwrap().webhooks.unwrap();
    assert!(
        webhooks
            .iter()
            .all(|w| w.client_config.ca_bundle.as_ref().map(|b| &b.0) == Some(&ca_bundle)),
        "the operator changed the injected caBundle"
    );

    // The twin: a server with another self-signed certificate for the same names. The client
    // trusting the bundle refuses it; one trusting that certificate accepts it (so only trust
    // differs).
    let other = rcgen::generate_simple_self_signed(service_names(ns)).unwrap();
    let mut twin = TestWebhook::start(Arc::new(NoPolicies)).await;
    twin.resolver.set(
        model_validation_operator::tls::certified_key(
            &other.cert.pem(),
            &other.signing_key.serialize_pem(),
        )
        .unwrap(),
    );
    let refused = admission_over_tls(&trusts_bundle, twin.addr.port(), service, ns)
        .await
        .expect_err("a client trusting only the injected caBundle accepted another certificate");
    assert!(
        refused.to_string().contains("UnknownIssuer")
            || refused.to_string().contains("BadSignature"),
        "{refused}"
    );
    phase(&format!("twin refused by the bundle's client: {refused}"));
    let trusts_other = client_trusting(other.cert.pem().as_bytes());
    let response = admission_over_tls(&trusts_other, twin.addr.port(), service, ns)
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    twin.shutdown();
    phase("done");
    drop(operator);
    running();
}
