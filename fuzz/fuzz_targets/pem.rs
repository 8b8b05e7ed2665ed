//! PEM: public keys (`--public_key`, `publicKeyConfig.keyPem`), CA certificates
//! (`--certificate_chain`, `pkiConfig.certificateAuthorityPem`). Private keys are the signer's
//! own input, not the verifier's, and are left out (their EC point checks cost a millisecond
//! per input). Whatever block is read must be written back by `to_pem` and read again to the
//! same label and bytes; a key or certificate that loads must load again from its own
//! re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_signing::keys::{PublicKey, pem_blocks, to_pem};
use model_signing::x509::Certificate;

fuzz_target!(|data: &[u8]| {
    for block in pem_blocks(data) {
        let written = to_pem(&block.label, &block.der);
        let back = pem_blocks(written.as_bytes());
        assert_eq!(back.len(), 1, "to_pem writes one block: {written:?}");
        assert_eq!(back[0].label, block.label);
        assert_eq!(back[0].der, block.der);
    }
    if let Ok(key) = PublicKey::from_pem("key", data) {
        let again = PublicKey::from_pem("key", to_pem("PUBLIC KEY", key.spki_der()).as_bytes())
            .expect("a key we wrote loads");
        assert!(again == key && again.hint() == key.hint());
    }
    if let Ok(certs) = Certificate::all_from_pem("ca", data) {
        for c in certs {
            let again = Certificate::from_der("ca", c.der()).expect("its DER parses");
            assert!(again == c && again.subject() == c.subject() && again.issuer() == c.issuer());
            let _ = (c.validity(), c.public_key(), c.san());
        }
    }
});
