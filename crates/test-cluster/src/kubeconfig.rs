//! The kubeconfig handed to tests, `kubectl` and the demo.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Renders a kubeconfig with the CA and the admin client certificate inline,
/// so the file works on its own wherever it is copied.
pub(crate) fn render(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mvo-local
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: mvo-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: mvo-local
  context:
    cluster: mvo-local
    user: mvo-admin
    namespace: default
current-context: mvo-local
",
        ca = STANDARD.encode(ca_pem),
        cert = STANDARD.encode(cert_pem),
        key = STANDARD.encode(key_pem),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn kube_parses_it() {
        let text = super::render("https://127.0.0.1:6443", "ca", "cert", "key");
        let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("mvo-local"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
    }
}
