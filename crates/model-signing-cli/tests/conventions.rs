//! CLI conventions: hyphenated flags are canonical (in `--help`, completions and the man page)
//! and the underscore spellings of model-signing 1.1.1 (which the operator gives its agent) keep
//! working the same; `--log-level` and `MODEL_SIGNING_LOG_LEVEL`; `completions` and `man`.

mod support;

use std::process::{Command, Output};

use clap::CommandFactory;
use model_signing_cli::Cli;
use support::{
    AT_TIME, BIN, fixture, json_ok, model, run, s, sign_with_certificate, sign_with_key, stderr,
    stdout, verify_key_args,
};

/// `args` with the flags named in `flags` (hyphenated) spelled with underscores.
fn underscored(args: &[&str], flags: &[&str]) -> Vec<String> {
    args.iter()
        .map(|a| {
            if flags.contains(a) {
                format!("--{}", a.trim_start_matches("--").replace('-', "_"))
            } else {
                a.to_string()
            }
        })
        .collect()
}

/// Standard output without what varies from run to run: the `elapsed_ms` of JSON output.
fn steady_stdout(o: &Output) -> String {
    match serde_json::from_slice::<serde_json::Value>(&o.stdout) {
        Ok(mut v) => {
            if let Some(m) = v.as_object_mut() {
                m.remove("elapsed_ms");
            }
            v.to_string()
        }
        Err(_) => stdout(o),
    }
}

/// Runs `args` as given and with `flags` underscored; asserts both spellings actually differ
/// and behave the same (exit code, stdout, stderr); returns the hyphenated run.
fn same_both_ways(args: &[&str], flags: &[&str]) -> Output {
    let under = underscored(args, flags);
    for f in flags {
        assert!(args.contains(f), "{f} is not in {args:?}");
        assert!(!under.iter().any(|a| a == f), "{under:?}");
    }
    let under: Vec<&str> = under.iter().map(String::as_str).collect();
    let hyphen = run(args);
    let underscore = run(&under);
    assert_eq!(
        (
            hyphen.status.code(),
            steady_stdout(&hyphen),
            stderr(&hyphen)
        ),
        (
            underscore.status.code(),
            steady_stdout(&underscore),
            stderr(&underscore)
        ),
        "{args:?} vs {under:?}"
    );
    hyphen
}

#[test]
fn sign_key_both_spellings_make_the_same_signature() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let key = fixture("peer-samples/ec-p256.priv.pem");
    let (hyphen_sig, under_sig) = (d.path().join("h.sig"), d.path().join("u.sig"));
    let sign = |sig: &std::path::Path, key_flag: &str, allow: &str| {
        let o = run(&[
            "sign",
            "key",
            s(&m),
            key_flag,
            s(&key),
            "--signature",
            s(sig),
            allow,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), "Signing succeeded\n");
    };
    sign(&hyphen_sig, "--private-key", "--allow-symlinks");
    sign(&under_sig, "--private_key", "--allow_symlinks");
    // ECDSA signatures differ; what they sign does not.
    let inspect = |sig: &std::path::Path| json_ok(&run(&["--output", "json", "inspect", s(sig)]));
    let (h, u) = (inspect(&hyphen_sig), inspect(&under_sig));
    assert_eq!(h["root_digest"], u["root_digest"], "{h}\n{u}");
    assert_eq!(h["serialization"], u["serialization"], "{h}\n{u}");
    assert_eq!(h["serialization"]["allow_symlinks"], true, "{h}");
}

#[test]
fn verify_key_both_spellings_behave_the_same() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    let public = fixture("peer-samples/ec-p256.pub.pem");
    let mut args = verify_key_args(&m, &sig, &public);
    args.extend(["--allow-symlinks", "--no-ignore-unsigned-files"]);
    let flags = [
        "--public-key",
        "--allow-symlinks",
        "--no-ignore-unsigned-files",
    ];
    let o = same_both_ways(&args, &flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Verification succeeded\n");
    // JSON output, and a failure: an unsigned file, refused unless --ignore-unsigned-files.
    std::fs::write(m.join("extra.bin"), "x").unwrap();
    let mut json = vec!["--output", "json"];
    json.extend(&args);
    let o = same_both_ways(&json, &flags);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    args.retain(|a| *a != "--no-ignore-unsigned-files");
    args.push("--ignore-unsigned-files");
    let o = same_both_ways(&args, &["--public-key", "--ignore-unsigned-files"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn verify_certificate_both_spellings_behave_the_same() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    sign_with_certificate(&m, &sig);
    let pki = fixture("peer-samples/pki");
    let verify = |root: &std::path::Path| {
        let args = [
            "--output",
            "json",
            "verify",
            "certificate",
            s(&m),
            "--signature",
            s(&sig),
            "--certificate-chain",
            s(root),
            "--log-fingerprints",
            "--at-time",
            AT_TIME,
        ];
        same_both_ways(&args, &["--certificate-chain", "--log-fingerprints"])
    };
    let o = verify(&pki.join("root-ca.cert.pem"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json_ok(&o);
    // A CA that did not issue the chain: refused the same way, the fix naming the new spelling.
    let o = verify(&pki.join("old-root.cert.pem"));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("--certificate-chain"), "{}", stdout(&o));
}

#[test]
fn ignore_path_options_both_spellings_behave_the_same() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    std::fs::create_dir(m.join(".git")).unwrap();
    std::fs::write(m.join(".git/HEAD"), "ref").unwrap();
    let digest = |extra: &[&str], flags: &[&str]| {
        let mut args = vec!["digest", s(&m)];
        args.extend(extra);
        let o = same_both_ways(&args, flags);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let all = digest(&[], &[]);
    let without_sub = digest(&["--ignore-paths", "sub"], &["--ignore-paths"]);
    let with_git = digest(&["--no-ignore-git-paths"], &["--no-ignore-git-paths"]);
    let git_ignored = digest(&["--ignore-git-paths"], &["--ignore-git-paths"]);
    // Each flag has its effect under both spellings.
    assert_ne!(all, without_sub);
    assert_ne!(all, with_git);
    assert_eq!(all, git_ignored);
    // And verification with them: signed without sub/, verified without sub/.
    let sig = sign_with_key(&m, &["--ignore-paths", "sub"]);
    let public = fixture("peer-samples/ec-p256.pub.pem");
    let mut args = verify_key_args(&m, &sig, &public);
    args.extend(["--ignore-paths", "sub", "--ignore-git-paths"]);
    let o = same_both_ways(
        &args,
        &["--public-key", "--ignore-paths", "--ignore-git-paths"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Every long flag of every subcommand, with its aliases (hidden ones included).
fn all_flags(cmd: &clap::Command, out: &mut Vec<(String, String, Vec<String>)>) {
    for a in cmd.get_arguments() {
        if let Some(long) = a.get_long() {
            let aliases = a
                .get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect();
            out.push((cmd.get_name().to_string(), long.to_string(), aliases));
        }
    }
    for sub in cmd.get_subcommands() {
        all_flags(sub, out);
    }
}

#[test]
fn every_flag_is_hyphenated_and_every_underscore_spelling_is_an_alias() {
    let mut flags = Vec::new();
    all_flags(&Cli::command(), &mut flags);
    for (cmd, long, aliases) in &flags {
        assert!(!long.contains('_'), "{cmd}: --{long} is not hyphenated");
        // Multi-word flags that had an underscore spelling keep it, hidden.
        if aliases.iter().any(|a| a.contains('_')) {
            assert!(aliases.contains(&long.replace('-', "_")), "{cmd}: --{long}");
        }
    }
    // The underscore spellings of model-signing 1.1.1 and of the operator's agent arguments.
    for old in [
        "public_key",
        "private_key",
        "signing_certificate",
        "certificate_chain",
        "ignore_paths",
        "ignore_git_paths",
        "no_ignore_git_paths",
        "allow_symlinks",
        "ignore_unsigned_files",
        "use_staging",
        "trust_config",
        "trusted_root",
        "identity_provider",
        "log_fingerprints",
        "public_key_env",
        "certificate_chain_env",
        "trust_config_env",
        "trusted_root_env",
        "policy_env",
        "health_addr",
        "health_port",
        "report_only",
    ] {
        let canonical = old.replace('_', "-");
        assert!(
            flags
                .iter()
                .any(|(_, long, aliases)| *long == canonical && aliases.iter().any(|a| a == old)),
            "--{old} is not an alias of --{canonical}"
        );
    }
}

#[test]
fn help_shows_the_hyphenated_spellings_only() {
    for cmd in [
        &["verify", "key"][..],
        &["verify", "certificate"],
        &["verify", "sigstore"],
        &["verify", "authorities"],
        &["sign", "key"],
        &["sign", "certificate"],
        &["digest"],
        &["oci", "verify", "sigstore"],
        &["oci", "sign", "certificate"],
        &[],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let help = stdout(&o);
        // No `--word_word` anywhere: neither in the options nor in the texts and examples.
        let underscored: Vec<&str> = help
            .split(|c: char| c.is_whitespace() || "`,.;:()[]<>|'\"".contains(c))
            .filter(|w| w.starts_with("--") && w.contains('_'))
            .collect();
        assert!(underscored.is_empty(), "{args:?}: {underscored:?}\n{help}");
    }
    let help = stdout(&run(&["verify", "key", "--help"]));
    assert!(help.contains("--public-key <PATH>"), "{help}");
    assert!(help.contains("--ignore-paths <PATH>"), "{help}");
    assert!(!help.contains("public_key"), "{help}");
    let help = stdout(&run(&["verify", "sigstore", "--help"]));
    for f in ["--identity-provider", "--use-staging", "--trust-config"] {
        assert!(help.contains(f), "{f}: {help}");
    }
}

/// The binary with `MODEL_SIGNING_LOG_LEVEL` set to `level`, or removed.
fn run_with_level_env(args: &[&str], level: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("MODEL_SIGNING_LOG_LEVEL");
    if let Some(l) = level {
        c.env("MODEL_SIGNING_LOG_LEVEL", l);
    }
    c.output().unwrap()
}

#[test]
fn an_invalid_log_level_is_a_usage_error_naming_the_valid_ones() {
    for (args, env) in [
        (&["--log-level", "loud", "digest", "."][..], None),
        (&["digest", ".", "--log-level", "WARNING"], None),
        (&["digest", "."], Some("loud")),
    ] {
        let o = run_with_level_env(args, env);
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}");
        let err = stderr(&o);
        assert!(err.contains("--log-level"), "{err}");
        assert!(
            err.contains("error, warn, info, debug, trace"),
            "{args:?}: {err}"
        );
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    }
}

#[test]
fn log_level_debug_adds_diagnostics_on_stderr_and_leaves_stdout_alone() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    let public = fixture("peer-samples/ec-p256.pub.pem");
    for output in ["text", "json"] {
        let mut args = vec!["--output", output];
        args.extend(verify_key_args(&m, &sig, &public));
        let quiet = run_with_level_env(&args, None);
        assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
        // The default level (warn) adds nothing to a successful run.
        assert_eq!(stderr(&quiet), "");
        let mut debug_args = args.clone();
        debug_args.extend(["--log-level", "debug"]);
        for debug in [
            run_with_level_env(&debug_args, None),
            run_with_level_env(&args, Some("debug")),
        ] {
            assert_eq!(debug.status.code(), Some(0), "{}", stderr(&debug));
            assert_eq!(steady_stdout(&debug), steady_stdout(&quiet));
            let err = stderr(&debug);
            assert!(
                err.lines()
                    .any(|l| l.contains("DEBUG") && l.contains("verifying")),
                "{err}"
            );
        }
        // The flag wins over the environment.
        let mut error_args = args.clone();
        error_args.extend(["--log-level", "error"]);
        let o = run_with_level_env(&error_args, Some("debug"));
        assert_eq!(steady_stdout(&o), steady_stdout(&quiet));
        assert_eq!(stderr(&o), "");
    }
}

#[test]
fn completions_name_the_commands_and_the_hyphenated_flags() {
    let o = run(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bash = stdout(&o);
    assert!(bash.contains("verify"), "{bash}");
    assert!(bash.contains("--public-key"), "{bash}");
    assert!(!bash.contains("--public_key"), "hidden aliases stay hidden");
    for shell in ["zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("public-key"), "{shell}: {}", stdout(&o));
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_for_the_command() {
    let o = run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    // clap_mangen opens with two lines defining the quote string, then the title.
    let first_macro = page
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH model-signing 1"), "{page}");
    assert!(page.contains(".SH NAME\nmodel\\-signing"), "{page}");
    assert!(page.contains("verify"), "{page}");
}
