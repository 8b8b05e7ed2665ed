//! The real node's configuration files, rendered from its layout: pure functions, no IO.
//!
//! Everything a node writes lives under its own directory, its own cgroup root and its own
//! bridge, so that two nodes (two test binaries) never meet and clean-up knows exactly what to
//! remove. Facts of this machine the settings answer (docs/local-control-plane.md):
//! - cgroup v1 only: the cgroupfs driver, and kubelet 1.35+ needs `failCgroupV1: false`;
//! - no CAP_SYS_RESOURCE in the bounding set: containerd must not raise a container's
//!   `oom_score_adj` below its own (`restrict_oom_score_adj`);
//! - no systemd, no kube-proxy, no registry needed: images are imported, the sandbox image is
//!   ours; a test registry over TLS is trusted per host with a `hosts.toml` (`certs.d`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The runc binary (Debian's runc).
pub const RUNC: &str = "/usr/sbin/runc";
/// Where the CNI plugins are (Debian's containernetworking-plugins).
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The sandbox image every pod's network namespace is held by.
pub const PAUSE_IMAGE: &str = "localhost/mvo-test/pause:v1";

/// Where one node keeps everything; every name it owns on the host derives from its `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The node's directory.
    pub dir: PathBuf,
    /// A few hex digits that name everything the node owns on the host.
    pub id: String,
    /// The pods' /24: `10.<a>.<b>.0/24`; the bridge (gateway) is `.1`.
    pub subnet: [u8; 2],
    /// kubelet's HTTPS port and healthz port.
    pub kubelet_ports: (u16, u16),
}

impl Layout {
    /// The node's name in the API: `mvo-node-<id>`.
    pub fn node_name(&self) -> String {
        format!("mvo-node-{}", self.id)
    }

    /// The Linux bridge its pods attach to: `mvo<id>` (at most 15 bytes).
    pub fn bridge(&self) -> String {
        format!("mvo{}", self.id)
    }

    /// Top-level cgroup (in every v1 hierarchy) under which kubelet puts every pod.
    pub fn cgroup_root(&self) -> String {
        format!("mvo-node-{}", self.id)
    }

    /// The CNI network's name (its results are cached under `/var/lib/cni/results/<name>-…`).
    pub fn network(&self) -> String {
        format!("mvo-{}", self.id)
    }

    /// The node's NAT chain: `MVO-<ID>` (two nodes never share one).
    pub fn nat_chain(&self) -> String {
        format!("MVO-{}", self.id.to_uppercase())
    }

    /// containerd's directory: config, root, state, socket.
    pub fn containerd_dir(&self) -> PathBuf {
        self.dir.join("containerd")
    }

    /// containerd's gRPC socket (kubelet's CRI endpoint, `ctr --address`).
    pub fn containerd_socket(&self) -> PathBuf {
        self.containerd_dir().join("containerd.sock")
    }

    /// containerd's per-registry settings (`certs.d/<host:port>/hosts.toml`), its CRI image
    /// plugin's `registry.config_path`: empty unless a test trusts a registry
    /// ([`super::RealNode::trust_registry`]).
    pub fn registry_config_dir(&self) -> PathBuf {
        self.containerd_dir().join("certs.d")
    }

    /// kubelet's root directory (pods' volumes, plugins, checkpoints).
    pub fn kubelet_dir(&self) -> PathBuf {
        self.dir.join("kubelet")
    }

    /// The CNI configuration directory containerd reads.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni").join("net.d")
    }

    /// The bridge's address, the pods' gateway: `10.<a>.<b>.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], 1)
    }

    /// The pods' subnet in CIDR notation.
    pub fn pod_cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.subnet[0], self.subnet[1])
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// containerd 2's configuration (version 3): everything under the node's directory, the CRI
/// plugin with our CNI config and sandbox image, runc with cgroupfs.
pub fn containerd_toml(l: &Layout) -> String {
    let c = l.containerd_dir();
    format!(
        r#"version = 3
root = '{root}'
state = '{state}'

[grpc]
  address = '{sock}'

[ttrpc]
  address = '{sock}.ttrpc'

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '{opt}'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause}'
    # Per-registry hosts.toml files, read at each pull: none unless a test adds one (a test
    # registry's CA, RealNode::trust_registry); without one, containerd's defaults.
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '{certs_d}'
  [plugins.'io.containerd.cri.v1.runtime']
    # No CAP_SYS_RESOURCE here: never try to lower a container's oom_score_adj below ours.
    restrict_oom_score_adj = true
    # Pods' network namespaces under our state dir, not /var/run/netns: clean-up finds them.
    netns_mounts_under_state_dir = true
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{runc}'
          # runc's state under ours, not /run/containerd/runc.
          Root = '{runc_root}'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{cni_bin}']
      conf_dir = '{cni_conf}'
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
"#,
        root = path(&c.join("root")),
        state = path(&c.join("state")),
        sock = path(&l.containerd_socket()),
        opt = path(&c.join("opt")),
        pause = PAUSE_IMAGE,
        certs_d = path(&l.registry_config_dir()),
        runc = RUNC,
        runc_root = path(&c.join("runc")),
        cni_bin = CNI_BIN_DIR,
        cni_conf = path(&l.cni_conf_dir()),
    )
}

/// containerd's `hosts.toml` for the registry at `host` (`127.0.0.1:PORT`) serving HTTPS with a
/// certificate signed by the CA in `ca_file`: pull and resolve there, trusting that CA (on top
/// of the system's roots). Reference: containerd's docs/hosts.md.
pub fn registry_hosts_toml(host: &str, ca_file: &Path) -> String {
    format!(
        r#"server = 'https://{host}'

[host.'https://{host}']
  capabilities = ['pull', 'resolve']
  ca = '{ca}'
"#,
        ca = path(ca_file),
    )
}

/// The CNI network: a bridge of our own with host-local addresses in our /24, no masquerade
/// (no iptables rule to leave behind: the pods need nothing beyond the host).
pub fn cni_conflist(l: &Layout) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cniVersion": "1.0.0",
        "name": l.network(),
        "plugins": [{
            "type": "bridge",
            "bridge": l.bridge(),
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": l.pod_cidr(), "gateway": l.gateway().to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": path(&l.dir.join("cni").join("ipam")),
            }
        }]
    }))
    .expect("static JSON")
}

/// kubelet's configuration: its API on the node's bridge address (the node's InternalIP, where
/// the API server calls it; client certificates of our CA only), healthz on loopback, our
/// runtime socket, cgroupfs under our cgroup root, no eviction or image GC to surprise a test.
pub fn kubelet_yaml(l: &Layout, client_ca: &Path) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {gateway}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{sock}
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /{cgroup_root}
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
# A shared test machine: disk and memory pressure must not evict test pods.
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
# No iptables rule on a shared machine (kubelet's KUBE-FIREWALL would drop any non-loopback
# packet to 127.0.0.0/8 for every process of the host).
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: ""
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
podLogsDir: {logs}
podPidsLimit: 4096
maxPods: 110
"#,
        gateway = l.gateway(),
        port = l.kubelet_ports.0,
        healthz = l.kubelet_ports.1,
        ca = path(client_ca),
        sock = path(&l.containerd_socket()),
        cgroup_root = l.cgroup_root(),
        logs = path(&l.dir.join("pod-logs")),
    )
}

/// `iptables` argument lists that send the `kubernetes` Service (10.0.0.1:443, the first
/// address of `--service-cluster-ip-range`) from the node's pods to the API server on
/// `127.0.0.1:<apiserver_port>`: a kube-proxy for that one Service. In a chain of the node's
/// own, jumped to from PREROUTING for packets from its bridge only.
pub fn nat_rules(l: &Layout, apiserver_port: u16) -> Vec<Vec<String>> {
    let chain = l.nat_chain();
    let bridge = l.bridge();
    let to = format!("127.0.0.1:{apiserver_port}");
    let dnat = [
        "-d",
        "10.0.0.1/32",
        "-p",
        "tcp",
        "--dport",
        "443",
        "-j",
        "DNAT",
        "--to-destination",
        &to,
    ];
    let jump = ["-i", &bridge, "-j", &chain];
    [
        vec!["-N", &chain],
        [&["-A", &chain][..], &dnat].concat(),
        [&["-A", "PREROUTING"][..], &jump].concat(),
    ]
    .into_iter()
    .map(|rule| {
        ["-w", "5", "-t", "nat"]
            .iter()
            .chain(&rule)
            .map(|a| a.to_string())
            .collect()
    })
    .collect()
}

/// A layout for unit tests: `dir`, `id`, subnet 10.201.7.0/24, kubelet ports 40001 and 40002.
#[cfg(test)]
pub(super) fn sample_layout(dir: &str, id: &str) -> Layout {
    Layout {
        dir: PathBuf::from(dir),
        id: id.into(),
        subnet: [201, 7],
        kubelet_ports: (40001, 40002),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        sample_layout("/tmp/mvo-control-plane-x/node", "1a2b")
    }

    #[test]
    fn containerd_keeps_everything_under_the_node_dir() {
        let toml = containerd_toml(&layout());
        for key in [
            "root = '",
            "state = '",
            "address = '",
            "path = '",
            "conf_dir = '",
        ] {
            let line = toml
                .lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap_or_else(|| panic!("{key} missing in\n{toml}"));
            assert!(line.contains("/tmp/mvo-control-plane-x/node/"), "{line}");
        }
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(toml.contains("netns_mounts_under_state_dir = true"));
        assert!(toml.contains("SystemdCgroup = false"));
        assert!(toml.contains("Root = '/tmp/mvo-control-plane-x/node/containerd/runc'"));
        assert!(toml.contains("sandbox = 'localhost/mvo-test/pause:v1'"));
        assert!(toml.contains(
            "[plugins.'io.containerd.cri.v1.images'.registry]\n      config_path = '/tmp/mvo-control-plane-x/node/containerd/certs.d'\n"
        ));
    }

    #[test]
    fn a_trusted_registry_is_pulled_over_https_with_its_ca() {
        let toml = registry_hosts_toml("127.0.0.1:5000", Path::new("/n/certs.d/ca.crt"));
        assert_eq!(
            toml,
            "server = 'https://127.0.0.1:5000'\n\n[host.'https://127.0.0.1:5000']\n  capabilities = ['pull', 'resolve']\n  ca = '/n/certs.d/ca.crt'\n"
        );
    }

    #[test]
    fn cni_uses_our_bridge_and_subnet_without_masquerade() {
        let v: serde_json::Value = serde_json::from_str(&cni_conflist(&layout())).unwrap();
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["bridge"], "mvo1a2b");
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.201.7.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.201.7.1");
        assert!(
            bridge["ipam"]["dataDir"]
                .as_str()
                .unwrap()
                .starts_with("/tmp/mvo-control-plane-x/node/")
        );
    }

    #[test]
    fn only_the_kubernetes_service_from_our_bridge_goes_to_the_api_server() {
        let rules = nat_rules(&layout(), 6443);
        let text: Vec<String> = rules.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            text,
            [
                "-w 5 -t nat -N MVO-1A2B",
                "-w 5 -t nat -A MVO-1A2B -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:6443",
                "-w 5 -t nat -A PREROUTING -i mvo1a2b -j MVO-1A2B",
            ]
        );
    }

    #[test]
    fn kubelet_listens_on_the_bridge_with_cgroupfs_under_our_root() {
        let yaml = kubelet_yaml(&layout(), Path::new("/ca.crt"));
        assert!(yaml.contains("address: 10.201.7.1\nport: 40001\n"));
        assert!(yaml.contains("healthzPort: 40002"));
        assert!(yaml.contains("cgroupDriver: cgroupfs\nfailCgroupV1: false\n"));
        assert!(yaml.contains("cgroupRoot: /mvo-node-1a2b\n"));
        assert!(yaml.contains("makeIPTablesUtilChains: false\n"));
        assert!(
            yaml.contains("containerRuntimeEndpoint: unix:///tmp/mvo-control-plane-x/node/containerd/containerd.sock")
        );
    }
}
