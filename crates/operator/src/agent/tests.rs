//! The operator→agent contract, checked against the agent's own command line: every rendering
//! of an [`Invocation`] is parsed with `model_signing_cli::Cli` and read back field by field.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use model_signing_cli::{Cli, Command, VerifyMethod, insert_default_method};

use super::*;

fn parse(args: &[String]) -> Cli {
    let argv = std::iter::once("model-signing".to_string())
        .chain(args.iter().cloned())
        .map(Into::into)
        .collect();
    Cli::try_parse_from(insert_default_method(argv))
        .unwrap_or_else(|e| panic!("the agent refuses {args:?}:\n{e}"))
}

fn methods() -> Vec<Method<'static>> {
    use crate::crd::{SigstoreTrust, Trust};
    let sigstore = |trust| Method::Sigstore {
        identity: "someone@example.com",
        issuer: "https://accounts.example.com",
        trust,
    };
    vec![
        Method::PublicKey {
            key: Trust::Path("/keys/pub.pem"),
        },
        Method::PublicKey {
            key: Trust::Inline("-----BEGIN PUBLIC KEY-----"),
        },
        Method::Certificate {
            ca: Trust::Path("/keys/ca.pem"),
        },
        Method::Certificate {
            ca: Trust::Inline("-----BEGIN CERTIFICATE-----"),
        },
        sigstore(None),
        sigstore(Some(SigstoreTrust::Config(Trust::Path(
            "/trust/config.json",
        )))),
        sigstore(Some(SigstoreTrust::Config(Trust::Inline("{}")))),
        sigstore(Some(SigstoreTrust::TrustedRoot("{}"))),
        Method::Authorities {
            document: r#"{"required":"any","authorities":[]}"#,
        },
    ]
}

fn all_options() -> Vec<Options> {
    let mut out = Vec::new();
    for ignore_paths in [
        vec![],
        vec!["cache".to_string(), "/data/model/logs".to_string()],
    ] {
        for bits in 0..16u8 {
            out.push(Options {
                ignore_paths: ignore_paths.clone(),
                ignore_git_paths: bits & 1 != 0,
                ignore_unsigned_files: bits & 2 != 0,
                allow_symlinks: bits & 4 != 0,
                report_only: bits & 8 != 0,
            });
        }
    }
    out
}

/// Checks that the agent reads back exactly what the invocation says.
fn assert_round_trip(inv: &Invocation<'_>) {
    let args = inv.args();
    let cli = parse(&args);
    let Command::Verify(verify) = &cli.command else {
        panic!("not a verify command: {args:?}");
    };
    use crate::crd::{SigstoreTrust, Trust};
    // A path flag names the path; an env flag names the variable that `env()` fills.
    let env_of = |var: &Option<String>| -> Option<String> {
        let var = var.as_ref()?;
        inv.env()
            .into_iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v)
    };
    let path = |p: &str| Some(Path::new(p).to_path_buf());
    match (&inv.method, verify) {
        (Method::PublicKey { key }, VerifyMethod::Key(k)) => match key {
            Trust::Path(p) => {
                assert_eq!((k.public_key.clone(), &k.public_key_env), (path(p), &None))
            }
            Trust::Inline(pem) => {
                assert_eq!(k.public_key, None);
                assert_eq!(env_of(&k.public_key_env).as_deref(), Some(*pem));
            }
        },
        (Method::Certificate { ca }, VerifyMethod::Certificate(c)) => match ca {
            Trust::Path(p) => {
                assert_eq!(c.certificate_chain, vec![Path::new(p).to_path_buf()]);
                assert_eq!(c.certificate_chain_env, None);
            }
            Trust::Inline(pem) => {
                assert!(c.certificate_chain.is_empty());
                assert_eq!(env_of(&c.certificate_chain_env).as_deref(), Some(*pem));
            }
        },
        (
            Method::Sigstore {
                identity,
                issuer,
                trust,
            },
            VerifyMethod::Sigstore(s),
        ) => {
            let k = &s.sigstore;
            assert_eq!(k.identity.as_deref(), Some(*identity));
            assert_eq!(k.identity_provider.as_deref(), Some(*issuer));
            assert_eq!((k.identity_regexp.as_deref(), k.use_staging), (None, false));
            let parsed = (
                k.trust_config.clone(),
                env_of(&s.trust_config_env),
                env_of(&s.trusted_root_env),
            );
            let expected = match trust {
                None => (None, None, None),
                Some(SigstoreTrust::Config(Trust::Path(p))) => (path(p), None, None),
                Some(SigstoreTrust::Config(Trust::Inline(j))) => (None, Some(j.to_string()), None),
                Some(SigstoreTrust::TrustedRoot(j)) => (None, None, Some(j.to_string())),
            };
            assert_eq!(parsed, expected, "{args:?}");
            assert_eq!(k.trusted_root, None);
        }
        (Method::Authorities { document }, VerifyMethod::Authorities(a)) => {
            assert_eq!(a.policy, None, "{args:?}");
            assert_eq!(env_of(&a.policy_env).as_deref(), Some(*document));
        }
        (m, v) => panic!("method {m:?} became {v:?}"),
    }
    // Exactly the variables the arguments name, and nothing else, are set.
    assert!(inv.env().len() <= 1, "{:?}", inv.env());
    let c = verify.common();
    let o = inv.options;
    assert_eq!(c.model.model_path, Path::new(inv.model_path), "{args:?}");
    assert_eq!(c.signature, Path::new(inv.signature_path), "{args:?}");
    let ignore: Vec<&Path> = o.ignore_paths.iter().map(Path::new).collect();
    let parsed: Vec<&Path> = c.model.ignore_paths.iter().map(|p| p.as_path()).collect();
    assert_eq!(parsed, ignore, "{args:?}");
    // Git paths: exactly one of the pair is set, the one the options ask for.
    assert_eq!(
        (c.model.ignore_git_paths, c.model.no_ignore_git_paths),
        (o.ignore_git_paths, !o.ignore_git_paths),
        "{args:?}"
    );
    assert_eq!(c.ignore_unsigned_files, o.ignore_unsigned_files, "{args:?}");
    assert_eq!(c.model.allow_symlinks, o.allow_symlinks, "{args:?}");
    assert_eq!(c.report_only, o.report_only, "{args:?}");
    assert_eq!(c.result_file.as_deref(), Some(Path::new(TERMINATION_LOG)));
    assert_eq!(format!("{:?}", c.fix_hints), "ModelValidation", "{args:?}");
    match &inv.watch {
        None => {
            assert_eq!(c.watch.interval, None, "{args:?}");
            assert_eq!(c.watch.health_addr, None, "{args:?}");
        }
        Some(w) => {
            let expected = model_signing_cli_interval(&w.interval);
            assert_eq!(c.watch.interval, Some(expected), "{args:?}");
            assert_eq!(
                c.watch.health_addr,
                Some(std::net::SocketAddr::from(([0, 0, 0, 0], w.health_port))),
                "{args:?}"
            );
        }
    }
}

/// The intervals used below, as durations.
fn model_signing_cli_interval(s: &str) -> Duration {
    match s {
        "5m" => Duration::from_secs(300),
        "1h30m" => Duration::from_secs(5400),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_method_and_option_combination_parses_as_the_agent_reads_it() {
    let mut checked = 0;
    for method in methods() {
        for options in all_options() {
            for watch in [
                None,
                Some(Watch {
                    interval: "5m".into(),
                    health_port: 9099,
                }),
                Some(Watch {
                    interval: "1h30m".into(),
                    health_port: 8080,
                }),
            ] {
                assert_round_trip(&Invocation {
                    method,
                    model_path: "/data/model",
                    signature_path: "/data/model.sig",
                    options: &options,
                    watch,
                });
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9 * 32 * 3);
}

#[test]
fn a_loose_spec_emits_the_loosening_flags_and_a_strict_one_does_not() {
    let loose = Options {
        ignore_paths: vec!["cache".into()],
        ignore_git_paths: true,
        ignore_unsigned_files: true,
        allow_symlinks: true,
        report_only: false,
    };
    let strict = Options {
        ignore_paths: vec![],
        ignore_git_paths: false,
        ignore_unsigned_files: false,
        allow_symlinks: false,
        report_only: false,
    };
    let args = |options: &Options| {
        Invocation {
            method: Method::PublicKey {
                key: crate::crd::Trust::Path("/keys/pub.pem"),
            },
            model_path: "/data/model",
            signature_path: "/data/model.sig",
            options,
            watch: None,
        }
        .args()
    };
    let loose = args(&loose);
    for flag in [
        "--ignore_unsigned_files",
        "--allow_symlinks",
        "--ignore-git-paths",
        "--ignore-paths",
    ] {
        assert!(loose.iter().any(|a| a == flag), "{flag} missing: {loose:?}");
    }
    let strict = args(&strict);
    for flag in [
        "--ignore_unsigned_files",
        "--allow_symlinks",
        "--ignore-git-paths",
        "--ignore-paths",
    ] {
        assert!(
            !strict.iter().any(|a| a == flag),
            "{flag} present: {strict:?}"
        );
    }
    assert!(strict.iter().any(|a| a == "--no-ignore-git-paths"));
    // The model path is last, so that an option can never be read as the model.
    assert_eq!(strict.last().map(String::as_str), Some("/data/model"));
}
