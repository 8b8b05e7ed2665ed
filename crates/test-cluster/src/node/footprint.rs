//! What real nodes leave on this host, as a set of lines a test compares before and after:
//! processes, mounts, cgroups, links, iptables rules, and the shared paths containerd, the CNI
//! plugins and kubelet use whatever they are told.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::processes_mentioning;

/// Every trace of any real node (`mvo-node-*`) on this host, plus the host-wide state a node
/// could change (every iptables rule, every link named `mvo…`, the shared paths).
pub fn host_footprint() -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for p in processes_mentioning("/mvo-node-") {
        // "<pid>: <command line>"; the pid changes from run to run, the line says enough.
        seen.insert(format!("process {p}"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        if let Some(point) = line.split(' ').nth(4)
            && point.contains("/mvo-node-")
        {
            seen.insert(format!("mount {point}"));
        }
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            if let Ok(groups) = std::fs::read_dir(h.path()) {
                for g in groups.flatten() {
                    if g.file_name().to_string_lossy().starts_with("mvo-node-") {
                        seen.insert(format!("cgroup {}", g.path().display()));
                    }
                }
            }
        }
    }
    for line in command_lines("ip", &["-o", "link", "show"]) {
        if let Some(name) = line.split(": ").nth(1)
            && name.starts_with("mvo")
        {
            seen.insert(format!("link {name}"));
        }
    }
    for line in command_lines("iptables-save", &[]) {
        if line.starts_with('#') {
            continue;
        }
        // Chain lines carry packet counters (`[0:0]`): drop them.
        let line = line.split(" [").next().unwrap_or(&line).to_string();
        seen.insert(format!("iptables {line}"));
    }
    for dir in [
        "/run/containerd",
        "/run/containerd/s",
        "/run/containerd/runc",
        "/var/lib/cni",
        "/var/lib/cni/results",
        "/var/lib/kubelet",
        "/var/lib/kubelet/device-plugins",
        "/run/netns",
    ] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            seen.insert(format!("path {dir}"));
            for e in entries.flatten() {
                seen.insert(format!("path {}", e.path().display()));
            }
        }
    }
    for temp in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = temp.file_name().to_string_lossy().into_owned();
        if name.starts_with("mvo-node-") && Path::new(&temp.path()).is_dir() {
            seen.insert(format!("dir {}", temp.path().display()));
        }
    }
    seen
}

fn command_lines(program: &str, args: &[&str]) -> Vec<String> {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
