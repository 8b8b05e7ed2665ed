//! Looking at processes through /proc, to prove that nothing is left running.

/// Whether `pid` runs. A zombie waiting for its new parent (init) to reap it no longer runs.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Live processes whose command line contains `needle`, as `"<pid>: <command line>"`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && is_alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_found() {
        assert!(is_alive(std::process::id()));
        let me = std::env::current_exe().unwrap();
        let found = processes_mentioning(&me.to_string_lossy());
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(&format!("{}: ", std::process::id()))),
            "{found:?}"
        );
    }
}
