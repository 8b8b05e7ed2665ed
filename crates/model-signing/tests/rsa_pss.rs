//! CA certificates signed with RSASSA-PSS (which the peer accepts through OpenSSL) validate too;
//! PSS with a salt length other than the hash's fails closed. Certificates are made with the
//! `openssl` command.

mod support;

use std::path::Path;
use std::time::SystemTime;

use model_signing::x509::{Certificate, verify_chain};
use support::openssl;

fn chain(dir: &Path, salt: &str) -> (Certificate, Certificate) {
    let salt_opt = format!("rsa_pss_saltlen:{salt}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/CN=PSS Root",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &salt_opt,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "leaf.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=pss leaf",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &salt_opt,
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    let load = |f: &str| {
        Certificate::all_from_pem(f, &std::fs::read(dir.join(f)).unwrap())
            .unwrap()
            .remove(0)
    };
    (load("leaf.pem"), load("root.pem"))
}

#[test]
fn rsa_pss_chains_validate() {
    let d = tempfile::tempdir().unwrap();
    let (leaf, root) = chain(d.path(), "32");
    let path = verify_chain(&leaf, &[], std::slice::from_ref(&root), SystemTime::now()).unwrap();
    assert_eq!(path.len(), 2);
}

#[test]
fn rsa_pss_with_another_salt_length_fails_closed() {
    let d = tempfile::tempdir().unwrap();
    let (leaf, root) = chain(d.path(), "20");
    let err = verify_chain(&leaf, &[], std::slice::from_ref(&root), SystemTime::now()).unwrap_err();
    assert!(
        err.to_string().contains("does not verify") || err.to_string().contains("unsupported"),
        "{err}"
    );
}
