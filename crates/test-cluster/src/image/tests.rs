use super::*;

#[test]
fn ldd_output_gives_libraries_and_the_loader() {
    let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f31)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f31)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f31)\n";
    let libs: Vec<String> = parse_ldd(text)
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        libs,
        [
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    let missing = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
    assert!(missing.to_string().contains("libfoo.so.1"), "{missing}");
}

#[test]
fn parents_are_directories_owned_by_root() {
    let mut fs = RootFs::default();
    fs.file("/usr/local/bin/tool", b"x".to_vec(), 0o755);
    fs.dir("/home/nonroot", 0o700, NONROOT);
    let paths: Vec<&str> = fs.entries.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/home",
            "/home/nonroot",
            "/usr",
            "/usr/local",
            "/usr/local/bin",
            "/usr/local/bin/tool"
        ]
    );
    assert_eq!(
        fs.entries["/usr/local"],
        Entry::Dir {
            mode: 0o755,
            owner: 0
        }
    );
}

#[test]
fn json_keys_are_sorted_whatever_the_map() {
    let map: std::collections::HashMap<String, u8> =
        (0..50).map(|i| (format!("k{i:02}"), i)).collect();
    let json = String::from_utf8(canonical_json(&map).unwrap()).unwrap();
    let expected: Vec<String> = (0..50).map(|i| format!("\"k{i:02}\":{i}")).collect();
    assert_eq!(json, format!("{{{}}}", expected.join(",")));
}

#[test]
fn timestamps_are_rfc3339() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
}
