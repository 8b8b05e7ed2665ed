"""Runs a batch of operations against the Python peer (model-signing 1.1.1) in one process.

Used by ../peer_interop.rs: Python and the peer's imports take ~0.6 s to start, so each test
sends all its peer operations in one file instead of starting one process per operation.

usage: python batch.py OPS.json RESULTS.json

OPS.json is a JSON list; each entry is an object with an "op" field:

  {"op": "cli", "args": [...]}
      Runs the peer's real command line (the click entry point behind `python -m model_signing`)
      in this process. Result: {"exit": int, "stdout": str, "stderr": str}.
  {"op": "sign", "model": P, "signature": P, "hashing": H,
   "key": P, "password": str|null}                                    (key method), or
   "key": P, "certificate": P, "chain": [P, ...]}                      (certificate method)
      Signs with the Python API (use_elliptic_key_signer / use_certificate_signer).
  {"op": "verify", "model": P, "signature": P, "hashing": H,
   "public_key": P | "ca": [P, ...]}
      Verifies with the Python API and the explicit hashing config H (the API cannot guess
      shards or blake2b from a signature in 1.1.1).
      API results: {"ok": bool, "error": "ExceptionType: message"}.
  {"op": "keygen", "curve": "P-256"|"P-384"|"P-521", "private": P, "public": P,
   "format": "sec1"|"pkcs8", "password": str|null}
  {"op": "cert", "out": P, "key_out": P, "key_type": "ec:P-256"|"rsa:3072"|...,
   "key": P (use an existing private key instead of key_type/key_out),
   "cn": str, "issuer_cert": P|null, "issuer_key": P|null (null: self-signed),
   "ca": bool, "pathlen": int|null, "ku": ["digital_signature", "key_cert_sign", ...],
   "eku": ["code_signing", ...], "not_before_days": float, "not_after_days": float}
      Test PKI with the `cryptography` package the peer depends on. Result: {"ok": true}.

  {"op": "forge_payload", "in": P, "out": P, "resource": NAME, "file": P}
      An attacker's edit: the payload now matches the changed `file` (see op_forge_payload).

H = {"method": "files"|"shards", "hash": "sha256"|"blake2"|"blake3", "shard_size": int}.
Operations never raise: a failure is reported in the result and the batch goes on.
"""

import contextlib
import datetime
import io
import json
import logging
import pathlib
import sys


def hashing_config(h):
    from model_signing import hashing

    h = h or {}
    cfg = hashing.Config()
    alg = h.get("hash", "sha256")
    if h.get("method", "files") == "shards":
        kw = {"hashing_algorithm": alg}
        if "shard_size" in h:
            kw["shard_size"] = int(h["shard_size"])
        return cfg.use_shard_serialization(**kw)
    return cfg.use_file_serialization(hashing_algorithm=alg)


def op_cli(o):
    from model_signing import _cli

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _cli.main.main(args=list(o["args"]), prog_name="model_signing", standalone_mode=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return {"exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def op_sign(o):
    from model_signing import signing

    cfg = signing.Config()
    if "certificate" in o:
        cfg = cfg.use_certificate_signer(
            private_key=o["key"], signing_certificate=o["certificate"], certificate_chain=o.get("chain", [])
        )
    else:
        pw = o.get("password")
        # The API is annotated `password: Optional[str]` but needs bytes (the CLI passes str and fails).
        cfg = cfg.use_elliptic_key_signer(private_key=o["key"], password=pw.encode() if pw is not None else None)
    cfg.set_hashing_config(hashing_config(o.get("hashing"))).sign(pathlib.Path(o["model"]), pathlib.Path(o["signature"]))
    return {"ok": True}


def op_verify(o):
    from model_signing import verifying

    cfg = verifying.Config()  # a fresh config per call: 1.1.1 leaks state between verify() calls
    if "ca" in o:
        cfg = cfg.use_certificate_verifier(certificate_chain=o["ca"])
    else:
        cfg = cfg.use_elliptic_key_verifier(public_key=o["public_key"])
    cfg.set_hashing_config(hashing_config(o.get("hashing"))).verify(pathlib.Path(o["model"]), pathlib.Path(o["signature"]))
    return {"ok": True}


def _curve(name):
    from cryptography.hazmat.primitives.asymmetric import ec

    return {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[name]


def _new_key(key_type):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    kind, _, param = key_type.partition(":")
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(param))
    return ec.generate_private_key(_curve(param))


def _write_private(key, path, fmt="sec1", password=None):
    from cryptography.hazmat.primitives import serialization as s

    if password is not None:
        enc, pf = s.BestAvailableEncryption(password.encode()), s.PrivateFormat.PKCS8
    else:
        enc = s.NoEncryption()
        pf = s.PrivateFormat.PKCS8 if fmt == "pkcs8" else s.PrivateFormat.TraditionalOpenSSL
    pathlib.Path(path).write_bytes(key.private_bytes(s.Encoding.PEM, pf, enc))


def _load_private(path):
    from cryptography.hazmat.primitives import serialization as s

    return s.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def op_keygen(o):
    from cryptography.hazmat.primitives import serialization as s

    key = _new_key("ec:" + o["curve"])
    _write_private(key, o["private"], o.get("format", "sec1"), o.get("password"))
    if o.get("public"):
        pub = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
        pathlib.Path(o["public"]).write_bytes(pub)
    return {"ok": True}


def op_cert(o):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if o.get("key"):
        key = _load_private(o["key"])
    else:
        key = _new_key(o["key_type"])
        _write_private(key, o["key_out"])
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, o["cn"]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "model-validation-operator interop test"),
        ]
    )
    if o.get("issuer_cert"):
        issuer_cert = x509.load_pem_x509_certificate(pathlib.Path(o["issuer_cert"]).read_bytes())
        issuer_name, issuer_key = issuer_cert.subject, _load_private(o["issuer_key"])
    else:
        issuer_cert, issuer_name, issuer_key = None, name, key
    # ECDSA issuers sign with the hash that matches their curve; RSA issuers with SHA-256.
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        alg = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[issuer_key.curve.key_size]
    else:
        alg = hashes.SHA256()
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=o.get("not_before_days", -1)))
        .not_valid_after(now + datetime.timedelta(days=o.get("not_after_days", 30)))
        .add_extension(x509.BasicConstraints(ca=bool(o.get("ca")), path_length=o.get("pathlen")), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False
        )
    ku = set(o.get("ku", []))
    if ku:
        flags = [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        ]
        b = b.add_extension(
            x509.KeyUsage(**{f: f in ku for f in flags}, encipher_only=False, decipher_only=False), critical=True
        )
    eku = o.get("eku", [])
    if eku:
        oids = {"code_signing": ExtendedKeyUsageOID.CODE_SIGNING, "server_auth": ExtendedKeyUsageOID.SERVER_AUTH}
        b = b.add_extension(x509.ExtendedKeyUsage([oids[e] for e in eku]), critical=False)
    if o.get("email"):
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(o["email"])]), critical=False)
    cert = b.sign(issuer_key, alg)
    pathlib.Path(o["out"]).write_bytes(cert.public_bytes(Encoding.PEM))
    return {"ok": True}


def op_forge_payload(o):
    """Re-targets a signed bundle: sets the digest of one resource to the sha256 of `file`,
    fixes up the subject's root digest, re-encodes the payload and keeps the old signature."""
    import base64
    import hashlib

    bundle = json.loads(pathlib.Path(o["in"]).read_text())
    env = bundle["dsseEnvelope"]
    stmt = json.loads(base64.b64decode(env["payload"]))
    for r in stmt["predicate"]["resources"]:
        if r["name"] == o["resource"]:
            r["digest"] = hashlib.sha256(pathlib.Path(o["file"]).read_bytes()).hexdigest()
            break
    else:
        raise ValueError(f"no resource {o['resource']}")
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in stmt["predicate"]["resources"]))
    stmt["subject"][0]["digest"]["sha256"] = root.hexdigest()
    env["payload"] = base64.b64encode(json.dumps(stmt, indent=2).encode()).decode()
    pathlib.Path(o["out"]).write_text(json.dumps(bundle, separators=(",", ":")))
    return {"ok": True}


OPS = {"cli": op_cli, "forge_payload": op_forge_payload, "sign": op_sign, "verify": op_verify, "keygen": op_keygen, "cert": op_cert}


def main():
    ops = json.loads(pathlib.Path(sys.argv[1]).read_text())
    # Logging goes to the real stderr, not to the first captured CLI call.
    logging.basicConfig(format="%(message)s", level=logging.INFO, stream=sys.stderr)
    results = []
    for o in ops:
        try:
            results.append(OPS[o["op"]](o))
        except Exception as e:  # noqa: BLE001  (the test decides what a failure means)
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    pathlib.Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
