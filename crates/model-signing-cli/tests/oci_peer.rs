//! Models in OCI registries and the real Python peer, `model-signing` 1.1.1, both ways, on
//! both registry kinds (referrers API, tag schema):
//!
//! - a signature made from the registry manifest (`oci sign key --signature`) verifies the
//!   model pulled from the registry with the peer's `verify key`, and the peer refuses it once a
//!   pulled file changes (the twin);
//! - a directory the peer signed, pushed with `oci push` and its signature attached with
//!   `oci attach`, verifies by reference; a peer signature of other content is refused by
//!   `oci attach`, naming the file (the twin).
//!
//! The peer venv comes from `make peer-venv` (tests/support: `peer_python`); these tests fail,
//! never skip, without it.

mod support;

use support::{
    Kind, Registry, fixture, oci, peer_cli, pull, registry_flags, run_with, s, stderr, stdout,
};

fn registries() -> [Registry; 2] {
    [Kind::Referrers, Kind::Distribution].map(|k| Registry::builder().kind(k).start().unwrap())
}

#[test]
fn a_signature_made_from_the_registry_verifies_the_pulled_model_with_the_peer() {
    for r in registries() {
        let d = tempfile::tempdir().unwrap();
        let flags = registry_flags(&r, d.path());
        let m = support::model(d.path());
        std::fs::write(m.join("sub/empty.txt"), "").unwrap();
        let reference = format!("{}/models/tiny:v1", r.host());
        let o = oci(&["push", s(&m), &reference], &flags);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let pinned = stdout(&o).trim().to_string();
        let sig = d.path().join("registry.sig");
        let mut f = flags.clone();
        f.extend(
            [
                "--private_key",
                s(&fixture("peer-samples/ec-p256.priv.pem")),
                "--signature",
                s(&sig),
            ]
            .map(String::from),
        );
        let o = run_with(&["oci", "sign", "key", &reference], &f);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

        let pulled = d.path().join("pulled/tiny");
        pull(&r, &pinned, &pulled);
        let public = fixture("peer-samples/ec-p256.pub.pem");
        let peer_verify = || {
            peer_cli(
                d.path(),
                &[
                    "verify",
                    "key",
                    s(&pulled),
                    "--signature",
                    s(&sig),
                    "--public_key",
                    s(&public),
                ],
            )
        };
        let o = peer_verify();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{:?}: {}{}",
            r.kind(),
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).contains("Verification succeeded"),
            "{}",
            stdout(&o)
        );

        // Twin: one changed byte in a pulled file and the peer refuses.
        std::fs::write(pulled.join("config.json"), "{ }").unwrap();
        let o = peer_verify();
        assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(out.contains("config.json"), "{out}");
    }
}

#[test]
fn a_directory_the_peer_signed_verifies_by_reference_once_pushed() {
    for r in registries() {
        let d = tempfile::tempdir().unwrap();
        let flags = registry_flags(&r, d.path());
        let m = support::model(d.path());
        let sig = support::peer_sign_key(d.path(), &m);
        let reference = format!("{}/models/peer:v1", r.host());

        // Twin first: pushed with a changed file, the peer's signature is not this model's.
        let before = std::fs::read(m.join("weights.bin")).unwrap();
        std::fs::write(m.join("weights.bin"), b"changed").unwrap();
        let o = oci(&["push", s(&m), &reference], &flags);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = oci(&["attach", s(&sig), &reference], &flags);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.starts_with("Attach failed with error: "), "{e}");
        assert!(
            e.contains("is not a signature of") && e.contains("1 file changed: weights.bin"),
            "{e}"
        );

        std::fs::write(m.join("weights.bin"), before).unwrap();
        let o = oci(&["push", s(&m), &reference], &flags);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let pinned = stdout(&o).trim().to_string();
        let o = oci(&["attach", s(&sig), &reference], &flags);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!("Attached {} to {pinned} as sha256:", s(&sig))),
            "{}",
            stdout(&o)
        );

        let mut f = flags.clone();
        f.extend(["--public_key", s(&fixture("peer-samples/ec-p256.pub.pem"))].map(String::from));
        let o = run_with(&["oci", "verify", "key", &reference], &f);
        assert_eq!(o.status.code(), Some(0), "{:?}: {}", r.kind(), stderr(&o));
        assert_eq!(stdout(&o), format!("Verification succeeded\n{pinned}\n"));
    }
}
