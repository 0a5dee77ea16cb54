//! The migrations folder: versions are unique (two branches once both added a version 3, and
//! only the test database noticed).

#[test]
fn migration_versions_are_unique_and_ordered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../billpay-store/migrations");
    let mut versions: Vec<u64> = std::fs::read_dir(&dir)
        .expect("migrations folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.split('_').next())
                .and_then(|v| v.parse().ok())
        })
        .collect();
    let n = versions.len();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        n,
        "two migrations share a version: {versions:?}"
    );
    assert!(n >= 4, "{versions:?}");
}
