//! Command-line syntax. Multi-word flags are spelled with hyphens (`--public-key`), as the
//! Python model-signing spells them since its 1.1.1 release; each is also accepted with
//! underscores (`--public_key`, 1.1.1's spelling and the one the operator gives its agent), as a
//! hidden alias.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # Sign a model directory with an EC private key (signature written inside the model)
  model-signing sign key ./model --private-key key.pem --signature ./model/model.sig

  # Verify it with the public key
  model-signing verify key ./model --public-key key.pub --signature ./model/model.sig

  # Verify a certificate-signed model against your CA, machine-readable
  model-signing --output json verify certificate ./model --signature model.sig --certificate-chain ca.pem

  # Verify a keyless (Sigstore) signature offline: who signed, and their OIDC issuer
  model-signing verify sigstore ./model --signature model.sig --identity user@example.com --identity-provider https://accounts.google.com

  # Print a model's root digest, and inspect a signature
  model-signing digest ./model
  model-signing inspect ./model/model.sig

  # Verify with a public key held in an environment variable (as the operator's agent does)
  model-signing verify key ./model --public-key-env MODEL_SIGNING_PUBLIC_KEY --signature ./model/model.sig

  # Several authorities from one document, e.g. the old and the new key during a rotation
  # (required: any), or two co-signers (required: all); see docs/cli.md
  model-signing verify authorities ./model --policy authorities.json --signature ./model/model.sig

  # Models in an OCI registry: push, sign and verify by reference (see `model-signing oci --help`)
  model-signing oci push ./model registry.example/models/tiny:v1
  model-signing oci verify key registry.example/models/tiny:v1 --public-key key.pub

  # Keep verifying every 5 minutes; serve /healthz, /readyz and /metrics on :8080
  model-signing verify key ./model --public-key key.pub --signature ./model/model.sig --interval 5m

Exit codes: 0 success, 1 verification or signing failed, 2 usage error.";

/// Sign and verify machine-learning models (OpenSSF Model Signing, OMS v1.0).
///
/// Reads and writes the same signatures as the Python `model-signing` package.
#[derive(Parser, Debug)]
#[command(name = "model-signing", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// Output format for results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Hashing threads (default: the number of CPUs).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Diagnostics on stderr at this level and above (results on stdout are unchanged).
    #[arg(
        long = "log-level",
        alias = "log_level",
        global = true,
        value_enum,
        value_name = "LEVEL",
        env = "MODEL_SIGNING_LOG_LEVEL",
        default_value_t = LogLevel::Warn
    )]
    pub log_level: LogLevel,

    #[command(subcommand)]
    pub command: Command,
}

/// Levels of `--log-level`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogLevel {
    Error,
    #[default]
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The tracing level filter of this level.
    pub fn filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// Result formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The peer's messages (`Verification succeeded` on stdout, errors on stderr).
    Text,
    /// One JSON object on stdout.
    Json,
}

/// How an error words its fix.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FixHints {
    /// As this command's flags (`--allow-symlinks`).
    #[default]
    Cli,
    /// As the fields of a ModelValidation (`spec.model.allowSymlinks: true`): the operator
    /// passes this to its agent, whose users never see its flags.
    ModelValidation,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sign a model.
    #[command(subcommand)]
    Sign(SignMethod),
    /// Verify a model against its signature.
    #[command(subcommand)]
    Verify(VerifyMethod),
    /// Print the root digest of a model (sha256:<hex>), as a signature would record it.
    Digest(DigestArgs),
    /// Show what a signature file contains: method, signer, serialization, resources.
    Inspect(InspectArgs),
    /// Models in OCI registries (CNCF ModelPack): push a directory, sign and verify it by
    /// reference from its manifest alone (no layer is downloaded), attach a signature file.
    #[command(subcommand, after_help = OCI_EXAMPLES)]
    Oci(OciCommand),
    /// Print a shell completion script to stdout, e.g.
    /// `model-signing completions bash > /etc/bash_completion.d/model-signing`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout, e.g.
    /// `model-signing man > /usr/local/share/man/man1/model-signing.1`.
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

const OCI_EXAMPLES: &str = "\
A model is pushed as a ModelPack artifact with one raw layer per file, so each layer digest is the
file's SHA-256: signing and verifying read only the registry manifest, never a layer. The
signature is attached as an OCI 1.1 referrer (artifactType
application/vnd.dev.sigstore.bundle.v0.3+json); on registries without the referrers API the
referrers tag schema (tag sha256-<hex>) is kept. It is the signature `sign key DIR` makes of the
pulled directory, so either verifies the other (and the Python model-signing package verifies it).

Examples:
  # Push a directory; prints the pushed reference with its digest
  model-signing oci push ./model registry.example/models/tiny:v1

  # Sign it by reference (and keep a copy of the signature)
  model-signing oci sign key registry.example/models/tiny:v1 --private-key key.pem --signature tiny.sig

  # Verify it by reference; prints the digest to pin (repo@sha256:...)
  model-signing oci verify key registry.example/models/tiny:v1 --public-key key.pub

  # Attach a signature made from the directory (e.g. by the Python model-signing package)
  model-signing oci attach model.sig registry.example/models/tiny:v1

  # A local registry on plain HTTP, one with its own CA, one needing credentials
  model-signing oci verify key 127.0.0.1:5000/models/tiny:v1 --public-key key.pub --plain-http
  model-signing oci verify key reg.internal/models/tiny:v1 --public-key key.pub --registry-ca ca.pem
  model-signing oci push ./model reg.internal/models/tiny:v1 --registry-config ./auth.json

Credentials: the `auths` of a docker config.json (--registry-config, else
$DOCKER_CONFIG/config.json, else ~/.docker/config.json); credential helpers (credsStore,
credHelpers) are not supported.

Exit codes: 0 success, 1 failure (refused, unsigned, registry error), 2 usage error.";

#[derive(Subcommand, Debug)]
pub enum OciCommand {
    /// Push a model directory as a ModelPack artifact (one raw layer per file, with
    /// org.cncf.model.filepath); prints REFERENCE@sha256:DIGEST.
    Push(OciPushArgs),
    /// Sign a model in a registry from its manifest alone and attach the signature as a
    /// referrer.
    #[command(subcommand)]
    Sign(OciSignMethod),
    /// Verify a model in a registry against the signatures attached to it, reading only its
    /// manifest and the signatures (with --modelcar-root: streaming a modelcar image's tar
    /// layers once); prints the reference pinned to the verified digest.
    #[command(subcommand)]
    Verify(OciVerifyMethod),
    /// Attach a signature file (a Sigstore bundle of this model, e.g. made from its directory)
    /// to a model in a registry as a referrer.
    Attach(OciAttachArgs),
}

const REGISTRY: &str = "Registry";

/// How to reach the registry.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// A docker config.json with credentials (`auths`) [default: $DOCKER_CONFIG/config.json,
    /// else ~/.docker/config.json, when present].
    #[arg(long = "registry-config", help_heading = REGISTRY, value_name = "PATH")]
    pub registry_config: Option<PathBuf>,
    /// Also trust this CA certificate (PEM) for the registry's TLS certificate (repeatable).
    #[arg(long = "registry-ca", help_heading = REGISTRY, value_name = "PATH")]
    pub registry_ca: Vec<PathBuf>,
    /// Talk plain HTTP, not HTTPS (a registry on loopback or in a test).
    #[arg(long = "plain-http", help_heading = REGISTRY)]
    pub plain_http: bool,
    /// Deadline of each registry operation (30s, 2m; a plain number is seconds).
    #[arg(long = "registry-timeout", help_heading = REGISTRY, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::parse_interval)]
    pub registry_timeout: Duration,
}

#[derive(Args, Debug)]
pub struct OciPushArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to push: registry/repository:tag.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum OciSignMethod {
    /// Sign with an EC private key (P-256, P-384 or P-521).
    Key(OciSignKeyArgs),
    /// Sign with an EC private key and its X.509 certificate chain.
    Certificate(OciSignCertificateArgs),
}

/// What every `oci sign` method shares.
#[derive(Args, Debug)]
pub struct OciSignCommon {
    /// The model: registry/repository:tag or registry/repository@sha256:DIGEST.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Also write the signature to this file.
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct OciSignKeyArgs {
    #[command(flatten)]
    pub common: OciSignCommon,
    #[command(flatten)]
    pub key: PrivateKeyArgs,
}

#[derive(Args, Debug)]
pub struct OciSignCertificateArgs {
    #[command(flatten)]
    pub common: OciSignCommon,
    #[command(flatten)]
    pub signer: CertificateSignerArgs,
}

#[derive(Subcommand, Debug)]
pub enum OciVerifyMethod {
    /// Verify with an EC public key.
    Key(OciVerifyKeyArgs),
    /// Verify with a certificate chain to the given CA certificates.
    Certificate(OciVerifyCertificateArgs),
    /// Verify a keyless Sigstore signature offline (embedded Sigstore roots; identity and issuer).
    Sigstore(OciVerifySigstoreArgs),
}

impl OciVerifyMethod {
    /// The reference and registry flags every method shares.
    pub fn common(&self) -> &OciVerifyCommon {
        match self {
            OciVerifyMethod::Key(a) => &a.common,
            OciVerifyMethod::Certificate(a) => &a.common,
            OciVerifyMethod::Sigstore(a) => &a.common,
        }
    }
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("trust").args(["use_staging", "trust_config", "trusted_root"])))]
pub struct OciVerifySigstoreArgs {
    #[command(flatten)]
    pub common: OciVerifyCommon,
    #[command(flatten)]
    pub sigstore: SigstoreIdentityArgs,
}

/// The model by reference, as every `oci verify` method and `oci attach` read it.
#[derive(Args, Debug)]
pub struct OciVerifyCommon {
    /// The model: registry/repository:tag or registry/repository@sha256:DIGEST.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// The image is a modelcar (a container image whose tar layers, plain or gzip, hold the
    /// model under this directory, e.g. /models as KServe's `oci+native://` uses): its layers
    /// are streamed once, without writing to disk, and the files under DIR are compared with
    /// the signature (a directory signature of the model). Without it, only ModelPack
    /// artifacts with raw layers are read (from their manifest alone).
    #[arg(long = "modelcar-root", value_name = "DIR")]
    pub modelcar_root: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct OciVerifyKeyArgs {
    #[command(flatten)]
    pub common: OciVerifyCommon,
    /// The signer's EC public key (PEM file).
    #[arg(long = "public-key", alias = "public_key", value_name = "PATH")]
    pub public_key: PathBuf,
}

#[derive(Args, Debug)]
pub struct OciVerifyCertificateArgs {
    #[command(flatten)]
    pub common: OciVerifyCommon,
    /// Trusted CA certificates (repeatable, PEM); nothing is trusted by default.
    #[arg(
        long = "certificate-chain",
        alias = "certificate_chain",
        value_name = "PATH",
        required = true
    )]
    pub certificate_chain: Vec<PathBuf>,
    /// Test only: check certificate validity at this Unix time instead of now. Hidden.
    #[arg(long = "at-time", value_name = "UNIX_SECONDS", hide = true)]
    pub at_time: Option<u64>,
}

#[derive(Args, Debug)]
pub struct OciAttachArgs {
    /// The signature file (a Sigstore bundle of a model signature).
    #[arg(value_name = "SIGNATURE")]
    pub signature: PathBuf,
    #[command(flatten)]
    pub model: OciVerifyCommon,
}

#[derive(Subcommand, Debug)]
pub enum SignMethod {
    /// Sign with an EC private key (P-256, P-384 or P-521).
    Key(SignKeyArgs),
    /// Sign with an EC private key and its X.509 certificate chain.
    Certificate(SignCertificateArgs),
    /// Keyless signing with Sigstore (needs Fulcio, Rekor and an OIDC token; not available).
    Sigstore(SignSigstoreArgs),
}

#[derive(Subcommand, Debug)]
pub enum VerifyMethod {
    /// Verify with an EC public key.
    Key(VerifyKeyArgs),
    /// Verify with a certificate chain to the given CA certificates.
    Certificate(VerifyCertificateArgs),
    /// Verify a keyless Sigstore signature offline (embedded Sigstore roots; identity and issuer).
    Sigstore(VerifySigstoreArgs),
    /// Verify with several authorities (keys, CAs, keyless identities) from a JSON document,
    /// and a rule on how many must vouch: any (key rotation), all (co-signing) or a count.
    Authorities(VerifyAuthoritiesArgs),
}

/// Which files make up the model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model: a directory or a single file.
    #[arg(value_name = "MODEL_PATH")]
    pub model_path: PathBuf,

    /// Leave out this path and everything under it (repeatable). Relative paths are taken from
    /// the current directory when that lands inside the model, otherwise from the model root.
    #[arg(long = "ignore-paths", alias = "ignore_paths", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,

    /// Leave out .git, .gitattributes, .github and .gitignore at the model root (default).
    #[arg(
        long = "ignore-git-paths",
        alias = "ignore_git_paths",
        overrides_with = "no_ignore_git_paths"
    )]
    pub ignore_git_paths: bool,

    /// Include the git paths.
    #[arg(long = "no-ignore-git-paths", alias = "no_ignore_git_paths")]
    pub no_ignore_git_paths: bool,

    /// Follow symlinks to files (the target's content is hashed under the link's name).
    #[arg(long = "allow-symlinks", alias = "allow_symlinks")]
    pub allow_symlinks: bool,
}

/// How to hash when signing (beyond the peer's CLI, which has only files/sha256).
#[derive(Args, Debug, Clone)]
pub struct HashingArgs {
    /// Digest algorithm of each resource.
    #[arg(long, value_enum, default_value_t = HashArg::Sha256)]
    pub hash: HashArg,

    /// Hash files in shards of N bytes instead of whole (the peer's default shard is 1000000000).
    #[arg(long = "shard-size", alias = "shard_size", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_size: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum HashArg {
    Sha256,
    Blake2b,
    Blake3,
}

#[derive(Args, Debug)]
pub struct SignCommon {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub hashing: HashingArgs,
    /// Where to write the signature.
    #[arg(long, default_value = "model.sig", value_name = "PATH")]
    pub signature: PathBuf,
}

/// The signing key of `sign key` and `sign certificate`.
#[derive(Args, Debug)]
pub struct PrivateKeyArgs {
    /// EC private key (PEM: SEC1, PKCS#8, or encrypted PKCS#8 with --password); for `sign
    /// certificate`, the key of the signing certificate.
    #[arg(long = "private-key", alias = "private_key", value_name = "PATH")]
    pub private_key: PathBuf,
    /// Password of an encrypted private key.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "MODEL_SIGNING_KEY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

#[derive(Args, Debug)]
pub struct SignKeyArgs {
    #[command(flatten)]
    pub common: SignCommon,
    #[command(flatten)]
    pub key: PrivateKeyArgs,
}

#[derive(Args, Debug)]
pub struct SignCertificateArgs {
    #[command(flatten)]
    pub common: SignCommon,
    #[command(flatten)]
    pub signer: CertificateSignerArgs,
}

/// The key and certificates of `sign certificate` and `oci sign certificate`.
#[derive(Args, Debug)]
pub struct CertificateSignerArgs {
    #[command(flatten)]
    pub key: PrivateKeyArgs,
    /// The signing (leaf) certificate, PEM.
    #[arg(
        long = "signing-certificate",
        alias = "signing_certificate",
        value_name = "PATH"
    )]
    pub signing_certificate: PathBuf,
    /// Intermediate certificates to ship in the signature (repeatable, PEM).
    #[arg(
        long = "certificate-chain",
        alias = "certificate_chain",
        value_name = "PATH"
    )]
    pub certificate_chain: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SignSigstoreArgs {
    /// The model.
    #[arg(value_name = "MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Ignored: keyless signing is not available.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VerifyCommon {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The signature file.
    #[arg(long, value_name = "PATH")]
    pub signature: PathBuf,
    /// Hash only the files the signature names; tolerate other files.
    #[arg(
        long = "ignore-unsigned-files",
        alias = "ignore_unsigned_files",
        overrides_with = "no_ignore_unsigned_files"
    )]
    pub ignore_unsigned_files: bool,
    /// Every file must be signed (default).
    #[arg(long = "no-ignore-unsigned-files", aliases = ["no-ignore_unsigned_files", "no_ignore_unsigned_files"])]
    pub no_ignore_unsigned_files: bool,
    /// Write a one-line result to this file as well (e.g. /dev/termination-log in Kubernetes).
    #[arg(long = "result-file", value_name = "PATH")]
    pub result_file: Option<PathBuf>,
    /// Report a failed verification (on stderr, in --result-file, and in watch mode on /readyz
    /// and /metrics) but exit 0 and stay ready: to try a policy without stopping what it would
    /// stop (the operator's `warn` and `audit` modes). The outcome line still starts with
    /// "verification failed:".
    #[arg(long = "report-only", alias = "report_only")]
    pub report_only: bool,
    /// How errors word their fix: as flags (`cli`) or as ModelValidation fields
    /// (`model-validation`, set by the operator for its agent). Hidden: an internal contract.
    #[arg(long = "fix-hints", value_enum, default_value_t = FixHints::Cli, hide = true)]
    pub fix_hints: FixHints,
    #[command(flatten)]
    pub watch: WatchArgs,
}

const WATCH: &str = "Watch mode";

/// Watch mode: keep verifying and serve health endpoints (see docs/cli.md, "Watch mode").
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Do not exit: verify again every DURATION (30s, 5m, 1h30m, 1.5h; a plain number is
    /// seconds; at least 1s) and serve /healthz, /readyz and /metrics.
    #[arg(long, help_heading = WATCH, value_name = "DURATION", value_parser = crate::duration::parse_interval)]
    pub interval: Option<Duration>,
    /// Where to serve /healthz, /readyz, /ready and /metrics (plain HTTP) [default: 0.0.0.0:8080].
    #[arg(
        help_heading = WATCH,
        long = "health-addr",
        alias = "health_addr",
        value_name = "ADDR",
        requires = "interval",
        conflicts_with = "health_port"
    )]
    pub health_addr: Option<SocketAddr>,
    /// Serve the health endpoints on 0.0.0.0:PORT (the upstream agent's flag).
    #[arg(
        help_heading = WATCH,
        long = "health-port",
        alias = "health_port",
        value_name = "PORT",
        requires = "interval"
    )]
    pub health_port: Option<u16>,
    /// The model was verified before this process started (by the operator's init container):
    /// start ready and verify first after one interval.
    #[arg(long = "skip-initial", help_heading = WATCH, alias = "skip_initial", requires = "interval")]
    pub skip_initial: bool,
    /// /healthz fails when one verification runs longer than this [default: 1h].
    #[arg(
        help_heading = WATCH,
        long = "stuck-after",
        alias = "stuck_after",
        value_name = "DURATION",
        requires = "interval",
        value_parser = crate::duration::parse_interval
    )]
    pub stuck_after: Option<Duration>,
}

impl VerifyMethod {
    /// The flags every method shares.
    pub fn common(&self) -> &VerifyCommon {
        match self {
            VerifyMethod::Key(a) => &a.common,
            VerifyMethod::Certificate(a) => &a.common,
            VerifyMethod::Sigstore(a) => &a.common,
            VerifyMethod::Authorities(a) => &a.common,
        }
    }
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("document").required(true).multiple(false).args(["policy", "policy_env"])))]
pub struct VerifyAuthoritiesArgs {
    #[command(flatten)]
    pub common: VerifyCommon,
    /// The authorities document (JSON: `required` and `authorities`, each a `key`,
    /// `certificateAuthority` or `keyless` identity, optionally with its own `signature`; see
    /// docs/cli.md). Authorities without their own signature read --signature. Exactly one of
    /// this and --policy-env.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// Instead of --policy: the name of an environment variable that holds the document itself
    /// (read once at start).
    #[arg(long = "policy-env", alias = "policy_env", value_name = "NAME")]
    pub policy_env: Option<String>,
    /// Test only: check certificate validity at this Unix time instead of now (as for `verify
    /// certificate`). Hidden; not for production.
    #[arg(long = "at-time", value_name = "UNIX_SECONDS", hide = true)]
    pub at_time: Option<u64>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key").required(true).multiple(false).args(["public_key", "public_key_env"])))]
pub struct VerifyKeyArgs {
    #[command(flatten)]
    pub common: VerifyCommon,
    /// The signer's EC public key (PEM file). Exactly one of this and --public-key-env.
    #[arg(long = "public-key", alias = "public_key", value_name = "PATH")]
    pub public_key: Option<PathBuf>,
    /// Instead of --public-key: the name of an environment variable that holds the PEM public
    /// key itself (read once at start).
    #[arg(long = "public-key-env", alias = "public_key_env", value_name = "NAME")]
    pub public_key_env: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyCertificateArgs {
    #[command(flatten)]
    pub common: VerifyCommon,
    /// Trusted CA certificates (repeatable, PEM). This or --certificate-chain-env is required:
    /// nothing is trusted by default.
    #[arg(
        long = "certificate-chain",
        alias = "certificate_chain",
        value_name = "PATH"
    )]
    pub certificate_chain: Vec<PathBuf>,
    /// The name of an environment variable that holds trusted CA certificates (PEM, one or
    /// more concatenated; read once at start). May be combined with --certificate-chain.
    #[arg(
        long = "certificate-chain-env",
        alias = "certificate_chain_env",
        value_name = "NAME"
    )]
    pub certificate_chain_env: Option<String>,
    /// Print the SHA-256 fingerprints of the certificates involved.
    #[arg(long = "log-fingerprints", alias = "log_fingerprints")]
    pub log_fingerprints: bool,
    /// Test only: check certificate validity at this Unix time instead of now, so that tests of
    /// fixture certificates do not start failing when those expire. Hidden; not for production.
    #[arg(long = "at-time", value_name = "UNIX_SECONDS", hide = true)]
    pub at_time: Option<u64>,
}

/// The keyless identity, issuer and trust-root flags `verify sigstore` and `oci verify sigstore`
/// share (each command adds its own trust group over them).
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["identity", "identity_regexp"])))]
#[command(group(clap::ArgGroup::new("issuer").required(true).args(["identity_provider", "identity_provider_regexp"])))]
pub struct SigstoreIdentityArgs {
    /// The expected identity: exactly one of the signing certificate's SANs (email, URI or
    /// username), e.g. `user@example.com` or a workflow URI.
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Option<String>,
    /// The expected OIDC issuer, exactly (e.g. https://github.com/login/oauth).
    #[arg(
        long = "identity-provider",
        alias = "identity_provider",
        value_name = "URL"
    )]
    pub identity_provider: Option<String>,
    /// Instead of --identity: a regular expression that must match a whole SAN (beyond the peer).
    #[arg(
        long = "identity-regexp",
        alias = "identity_regexp",
        value_name = "REGEX"
    )]
    pub identity_regexp: Option<String>,
    /// Instead of --identity-provider: a regular expression that must match the whole issuer.
    #[arg(
        long = "identity-provider-regexp",
        alias = "identity_provider_regexp",
        value_name = "REGEX"
    )]
    pub identity_provider_regexp: Option<String>,
    /// Trust the embedded Sigstore staging root instead of production.
    #[arg(long = "use-staging", alias = "use_staging")]
    pub use_staging: bool,
    /// Trust the root of this ClientTrustConfig JSON
    /// (mediaType application/vnd.dev.sigstore.clienttrustconfig.v0.1+json).
    #[arg(long = "trust-config", alias = "trust_config", value_name = "PATH")]
    pub trust_config: Option<PathBuf>,
    /// Trust this Sigstore trusted_root.json (e.g. a newer one than the embedded root).
    #[arg(long = "trusted-root", alias = "trusted_root", value_name = "PATH")]
    pub trusted_root: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("trust").args(["use_staging", "trust_config", "trusted_root", "trust_config_env", "trusted_root_env"])))]
pub struct VerifySigstoreArgs {
    #[command(flatten)]
    pub common: VerifyCommon,
    #[command(flatten)]
    pub sigstore: SigstoreIdentityArgs,
    /// Instead of --trust-config: the name of an environment variable that holds the
    /// ClientTrustConfig JSON itself (read once at start).
    #[arg(
        long = "trust-config-env",
        alias = "trust_config_env",
        value_name = "NAME"
    )]
    pub trust_config_env: Option<String>,
    /// Instead of --trusted-root: the name of an environment variable that holds the
    /// trusted_root.json itself (read once at start).
    #[arg(
        long = "trusted-root-env",
        alias = "trusted_root_env",
        value_name = "NAME"
    )]
    pub trusted_root_env: Option<String>,
}

#[derive(Args, Debug)]
pub struct DigestArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub hashing: HashingArgs,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The signature file.
    #[arg(value_name = "SIGNATURE")]
    pub signature: PathBuf,
}

/// The peer treats `sign ./model` as `sign sigstore ./model`; so do we.
pub fn insert_default_method(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const METHODS: [&str; 7] = [
        "key",
        "certificate",
        "sigstore",
        "authorities",
        "pkcs11-key",
        "pkcs11-certificate",
        "help",
    ];
    // `oci sign|verify` always names its method.
    if args.iter().any(|a| a == "oci") {
        return args;
    }
    let pos = args.iter().position(|a| a == "sign" || a == "verify");
    if let Some(i) = pos
        && let Some(next) = args.get(i + 1).and_then(|a| a.to_str())
        && !METHODS.contains(&next)
        && !next.starts_with('-')
    {
        args.insert(i + 1, "sigstore".into());
    }
    args
}
