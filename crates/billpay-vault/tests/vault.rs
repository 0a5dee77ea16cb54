//! Behaviour of the vault through its public API.

use std::cell::Cell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use billpay_vault::{Keyring, Rng, Sealed, VaultError};
use proptest::prelude::*;

/// A deterministic test source (splitmix64). Never use outside tests.
struct TestRng(Cell<u64>);

impl TestRng {
    fn new(seed: u64) -> TestRng {
        TestRng(Cell::new(seed))
    }
}

impl Rng for TestRng {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut z = self.0.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            self.0.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn keyring(seed: u64) -> (Keyring, TestRng) {
    let rng = TestRng::new(seed);
    (Keyring::generate(&rng), rng)
}

/// Every base64 key in the keyring's TOML text.
fn base64_keys(keyring: &Keyring) -> Vec<String> {
    keyring
        .to_toml()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------- seal / open

#[test]
fn seal_open_round_trip() {
    let (keyring, rng) = keyring(1);
    let sealed = keyring.seal("pm_1", b"4111111111111111", &rng).unwrap();
    assert_eq!(sealed.kek_version, 1);
    assert!(!sealed.ciphertext.contains("4111"));
    assert_eq!(
        &keyring.open("pm_1", &sealed).unwrap()[..],
        b"4111111111111111"
    );
}

#[test]
fn empty_plaintext_round_trips() {
    let (keyring, rng) = keyring(2);
    let sealed = keyring.seal("pm_1", b"", &rng).unwrap();
    assert!(keyring.open("pm_1", &sealed).unwrap().is_empty());
}

#[test]
fn each_seal_uses_fresh_keys_and_nonces() {
    let (keyring, rng) = keyring(3);
    let a = keyring.seal("pm_1", b"same", &rng).unwrap();
    let b = keyring.seal("pm_1", b"same", &rng).unwrap();
    assert_ne!(a.wrapped_key, b.wrapped_key);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn open_with_another_record_id_is_tampered() {
    let (keyring, rng) = keyring(4);
    let sealed = keyring.seal("pm_1", b"4111111111111111", &rng).unwrap();
    assert_eq!(
        keyring.open("pm_2", &sealed).unwrap_err(),
        VaultError::Tampered
    );
    assert_eq!(keyring.open("", &sealed).unwrap_err(), VaultError::Tampered);
}

#[test]
fn wrapped_key_cannot_be_moved_to_another_record() {
    let (keyring, rng) = keyring(5);
    let a = keyring.seal("pm_a", b"1111", &rng).unwrap();
    let b = keyring.seal("pm_b", b"2222", &rng).unwrap();
    let swapped = Sealed {
        wrapped_key: a.wrapped_key.clone(),
        ..b.clone()
    };
    assert_eq!(
        keyring.open("pm_b", &swapped).unwrap_err(),
        VaultError::Tampered
    );
    assert_eq!(
        keyring.open("pm_a", &swapped).unwrap_err(),
        VaultError::Tampered
    );
}

#[test]
fn open_with_another_keyring_is_tampered() {
    let (keyring_a, rng) = keyring(6);
    let (keyring_b, _) = keyring(7);
    let sealed = keyring_a.seal("pm_1", b"secret", &rng).unwrap();
    assert_eq!(
        keyring_b.open("pm_1", &sealed).unwrap_err(),
        VaultError::Tampered
    );
}

fn flip_each_byte(field: &str, mut check: impl FnMut(String)) {
    let bytes = STANDARD.decode(field).unwrap();
    for position in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut altered = bytes.clone();
            altered[position] ^= mask;
            check(STANDARD.encode(&altered));
        }
    }
}

#[test]
fn flipping_any_byte_of_the_wrapped_key_fails_cleanly() {
    let (keyring, rng) = keyring(8);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    let mut checked = 0;
    flip_each_byte(&sealed.wrapped_key, |wrapped_key| {
        let altered = Sealed {
            wrapped_key,
            ..sealed.clone()
        };
        let err = keyring.open("pm_1", &altered).unwrap_err();
        assert!(
            matches!(err, VaultError::Tampered | VaultError::Malformed(_)),
            "{err:?}"
        );
        assert!(keyring.rewrap("pm_1", &altered, &rng).is_err());
        checked += 1;
    });
    assert_eq!(checked, 60 * 3);
}

#[test]
fn flipping_any_byte_of_the_ciphertext_fails_cleanly() {
    let (keyring, rng) = keyring(9);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    let mut checked = 0;
    flip_each_byte(&sealed.ciphertext, |ciphertext| {
        let altered = Sealed {
            ciphertext,
            ..sealed.clone()
        };
        let err = keyring.open("pm_1", &altered).unwrap_err();
        assert!(
            matches!(err, VaultError::Tampered | VaultError::Malformed(_)),
            "{err:?}"
        );
        checked += 1;
    });
    assert_eq!(checked, (12 + 4 + 16) * 3);
}

#[test]
fn truncated_or_extended_fields_fail_cleanly() {
    let (keyring, rng) = keyring(10);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    for field in 0..2 {
        let original = if field == 0 {
            &sealed.wrapped_key
        } else {
            &sealed.ciphertext
        };
        let bytes = STANDARD.decode(original).unwrap();
        let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        let mut longer = bytes.clone();
        longer.push(0);
        variants.push(longer);
        for variant in variants {
            let encoded = STANDARD.encode(&variant);
            let altered = if field == 0 {
                Sealed {
                    wrapped_key: encoded,
                    ..sealed.clone()
                }
            } else {
                Sealed {
                    ciphertext: encoded,
                    ..sealed.clone()
                }
            };
            let err = keyring.open("pm_1", &altered).unwrap_err();
            assert!(
                matches!(err, VaultError::Tampered | VaultError::Malformed(_)),
                "{err:?}"
            );
        }
    }
}

#[test]
fn garbage_base64_is_malformed() {
    let (keyring, rng) = keyring(11);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    for garbage in ["not base64!", "%%%%", "QUJD=X", "\u{1F4B3}"] {
        let bad_wrap = Sealed {
            wrapped_key: garbage.into(),
            ..sealed.clone()
        };
        assert!(matches!(
            keyring.open("pm_1", &bad_wrap),
            Err(VaultError::Malformed(_))
        ));
        let bad_ct = Sealed {
            ciphertext: garbage.into(),
            ..sealed.clone()
        };
        assert!(matches!(
            keyring.open("pm_1", &bad_ct),
            Err(VaultError::Malformed(_))
        ));
    }
    let empty = Sealed {
        ciphertext: String::new(),
        ..sealed
    };
    assert!(matches!(
        keyring.open("pm_1", &empty),
        Err(VaultError::Malformed(_))
    ));
}

#[test]
fn changing_the_kek_version_fails() {
    let (mut keyring, rng) = keyring(12);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    keyring.rotate(&rng);
    let relabelled = Sealed {
        kek_version: 2,
        ..sealed.clone()
    };
    assert_eq!(
        keyring.open("pm_1", &relabelled).unwrap_err(),
        VaultError::Tampered
    );
    let unknown = Sealed {
        kek_version: 9,
        ..sealed
    };
    assert_eq!(
        keyring.open("pm_1", &unknown).unwrap_err(),
        VaultError::UnknownKeyVersion(9)
    );
}

#[test]
fn sealed_serializes_with_serde() {
    let (keyring, rng) = keyring(13);
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();
    let text = toml::to_string(&sealed).unwrap();
    let back: Sealed = toml::from_str(&text).unwrap();
    assert_eq!(back, sealed);
}

// ------------------------------------------------------------- rotate / rewrap

#[test]
fn rotate_then_rewrap() {
    let (mut keyring, rng) = keyring(20);
    let old = keyring.seal("pm_1", b"4111111111111111", &rng).unwrap();
    let untouched = keyring.seal("pm_2", b"5555555555554444", &rng).unwrap();

    assert_eq!(keyring.rotate(&rng), 2);
    assert_eq!(keyring.active_version(), 2);
    assert_eq!(keyring.versions(), vec![1, 2]);
    assert!(keyring.needs_rewrap(&old));

    // Old records still open before rewrap; new ones are sealed under v2.
    assert_eq!(
        &keyring.open("pm_1", &old).unwrap()[..],
        b"4111111111111111"
    );
    assert_eq!(keyring.seal("pm_3", b"x", &rng).unwrap().kek_version, 2);

    let rewrapped = keyring.rewrap("pm_1", &old, &rng).unwrap();
    assert_eq!(rewrapped.kek_version, 2);
    assert_eq!(rewrapped.ciphertext, old.ciphertext);
    assert_ne!(rewrapped.wrapped_key, old.wrapped_key);
    assert!(!keyring.needs_rewrap(&rewrapped));
    assert_eq!(
        &keyring.open("pm_1", &rewrapped).unwrap()[..],
        b"4111111111111111"
    );

    // Rewrapping a record already under the active version changes nothing.
    assert_eq!(keyring.rewrap("pm_1", &rewrapped, &rng).unwrap(), rewrapped);
    // Rewrapping under the wrong record id is refused.
    assert_eq!(
        keyring.rewrap("pm_2", &old, &rng).unwrap_err(),
        VaultError::Tampered
    );

    keyring.retire(1).unwrap();
    assert_eq!(keyring.versions(), vec![2]);
    assert_eq!(
        &keyring.open("pm_1", &rewrapped).unwrap()[..],
        b"4111111111111111"
    );
    assert_eq!(
        keyring.open("pm_2", &untouched).unwrap_err(),
        VaultError::UnknownKeyVersion(1)
    );
    assert_eq!(
        keyring.rewrap("pm_2", &untouched, &rng).unwrap_err(),
        VaultError::UnknownKeyVersion(1)
    );
}

#[test]
fn retire_refuses_the_active_version_and_unknown_versions() {
    let (mut keyring, rng) = keyring(21);
    assert_eq!(keyring.retire(1).unwrap_err(), VaultError::RetireActive(1));
    keyring.rotate(&rng);
    assert_eq!(keyring.retire(2).unwrap_err(), VaultError::RetireActive(2));
    assert_eq!(
        keyring.retire(7).unwrap_err(),
        VaultError::UnknownKeyVersion(7)
    );
    keyring.retire(1).unwrap();
    assert_eq!(keyring.versions(), vec![2]);
    assert_eq!(keyring.rotate(&rng), 3);
    assert_eq!(keyring.versions(), vec![2, 3]);
}

#[test]
fn rotation_keeps_the_fingerprint_key() {
    let (mut keyring, rng) = keyring(22);
    let before = keyring.fingerprint("card", "4111111111111111");
    keyring.rotate(&rng);
    keyring.retire(1).unwrap();
    assert_eq!(keyring.fingerprint("card", "4111111111111111"), before);
}

// ---------------------------------------------------------------- fingerprint

#[test]
fn fingerprints() {
    let (a, _) = keyring(30);
    let (b, _) = keyring(31);
    let pan = "4111111111111111";
    let fp = a.fingerprint("card:acct_1", pan);
    assert_eq!(fp, a.fingerprint("card:acct_1", pan));
    assert_eq!(fp.len(), 64);
    assert!(
        fp.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(!fp.contains(pan));
    assert!(!fp.contains("1111"));
    assert_ne!(fp, b.fingerprint("card:acct_1", pan));
    assert_ne!(fp, a.fingerprint("card:acct_2", pan));
    assert_ne!(fp, a.fingerprint("bank", pan));
    assert_ne!(fp, a.fingerprint("card:acct_1", "4111111111111112"));
    // The 0x00 separator keeps domain and value apart.
    assert_ne!(a.fingerprint("ab", "c"), a.fingerprint("a", "bc"));
}

#[test]
fn fingerprint_survives_a_toml_round_trip() {
    let (a, _) = keyring(32);
    let b = Keyring::from_toml(&a.to_toml()).unwrap();
    assert_eq!(a.fingerprint("card", "x"), b.fingerprint("card", "x"));
}

// ------------------------------------------------------------------ keyring file

#[test]
fn toml_round_trip() {
    let (mut keyring, rng) = keyring(40);
    keyring.rotate(&rng);
    keyring.rotate(&rng);
    keyring.retire(1).unwrap();
    let sealed = keyring.seal("pm_1", b"4242", &rng).unwrap();

    let text = keyring.to_toml();
    assert!(text.starts_with("# billpay vault keyring"));
    assert!(text.contains("KEEP IT SECRET"));
    assert!(text.contains("KEEP IT BACKED UP"));
    assert!(text.contains("active = 3\n"));
    assert!(text.contains("[keys]\n2 = \""));

    let back = Keyring::from_toml(&text).unwrap();
    assert_eq!(back.active_version(), 3);
    assert_eq!(back.versions(), vec![2, 3]);
    assert_eq!(back.to_toml(), text);
    assert_eq!(&back.open("pm_1", &sealed).unwrap()[..], b"4242");
}

#[test]
fn from_toml_accepts_the_documented_format() {
    let k = |b: u8| STANDARD.encode([b; 32]);
    let text = format!(
        "# my keyring\nactive = 2\nfingerprint_key = \"{}\"\n[keys]\n\"1\" = \"{}\"\n2 = \"{}\"\n",
        k(9),
        k(1),
        k(2)
    );
    let keyring = Keyring::from_toml(&text).unwrap();
    assert_eq!(keyring.active_version(), 2);
    assert_eq!(keyring.versions(), vec![1, 2]);
}

#[cfg(unix)]
#[test]
fn save_load_round_trip_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    let (mut keyring, rng) = keyring(41);
    keyring.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let loaded = Keyring::load(&path).unwrap();
    assert_eq!(loaded.to_toml(), keyring.to_toml());

    // Overwriting a looser file leaves an owner-only one, and no temp files.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    keyring.rotate(&rng);
    keyring.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(Keyring::load(&path).unwrap().versions(), vec![1, 2]);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keyring.toml")]);
}

#[test]
fn load_and_save_report_io_errors_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    match Keyring::load(&missing).unwrap_err() {
        VaultError::Io { path, message } => {
            assert!(path.ends_with("missing.toml"));
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let (keyring, _) = keyring(42);
    let nowhere = dir.path().join("no-such-dir").join("keyring.toml");
    assert!(matches!(
        keyring.save(&nowhere).unwrap_err(),
        VaultError::Io { .. }
    ));
}

#[test]
fn load_names_the_file_in_invalid_keyring_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "active = 1\n").unwrap();
    match Keyring::load(&path).unwrap_err() {
        VaultError::InvalidKeyring(m) => assert!(m.contains("bad.toml"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn invalid_message(text: &str) -> String {
    match Keyring::from_toml(text) {
        Err(VaultError::InvalidKeyring(message)) => message,
        other => panic!("expected InvalidKeyring, got {other:?}"),
    }
}

#[test]
fn invalid_keyrings_are_explained() {
    let key = STANDARD.encode([1u8; 32]);
    let fp = STANDARD.encode([2u8; 32]);
    let short = STANDARD.encode([3u8; 16]);
    let cases: Vec<(String, &str)> = vec![
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\n1 = \"not*base64\"\n"),
            "key version 1 is not valid base64",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\n1 = \"{short}\"\n"),
            "key version 1 must be 32 bytes (256 bits) of base64, found 16 bytes",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{short}\"\n[keys]\n1 = \"{key}\"\n"),
            "`fingerprint_key` must be 32 bytes",
        ),
        (
            format!("active = 1\nfingerprint_key = \"@@\"\n[keys]\n1 = \"{key}\"\n"),
            "`fingerprint_key` is not valid base64",
        ),
        (
            format!("active = 2\nfingerprint_key = \"{fp}\"\n[keys]\n1 = \"{key}\"\n"),
            "the active version 2 is not in [keys] (versions present: 1)",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\n"),
            "[keys] is empty",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n"),
            "missing [keys]",
        ),
        (
            format!("fingerprint_key = \"{fp}\"\n[keys]\n1 = \"{key}\"\n"),
            "missing `active`",
        ),
        (
            format!("active = 1\n[keys]\n1 = \"{key}\"\n"),
            "missing `fingerprint_key`",
        ),
        (
            format!("active = 0\nfingerprint_key = \"{fp}\"\n[keys]\n1 = \"{key}\"\n"),
            "`active` must be a key version from 1",
        ),
        (
            format!("active = \"1\"\nfingerprint_key = \"{fp}\"\n[keys]\n1 = \"{key}\"\n"),
            "`active` must be a whole number",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\none = \"{key}\"\n"),
            "[keys] entry `one` is not a key version",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\n0 = \"{key}\"\n"),
            "[keys] entry `0` is not a key version",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\n[keys]\n1 = 5\n"),
            "key version 1 must be a base64 string",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{key}\"\n[keys]\n1 = \"{key}\"\n"),
            "key version 1 and the fingerprint key are the same key",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\"\nextra = 1\n[keys]\n1 = \"{key}\"\n"),
            "unknown field `extra`",
        ),
        (
            format!("active = 1\nfingerprint_key = \"{fp}\n[keys]\n1 = \"{key}\"\n"),
            "not valid TOML at line 2",
        ),
        (String::new(), "missing `active`"),
    ];
    for (text, expected) in cases {
        let message = invalid_message(&text);
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
        for secret in [&key, &fp, &short] {
            assert!(
                !message.contains(secret.as_str()),
                "{message:?} leaks a key"
            );
        }
        let display = VaultError::InvalidKeyring(message).to_string();
        assert!(display.starts_with("the keyring is invalid: "));
    }
}

#[test]
fn debug_of_keyring_shows_no_key() {
    let (mut keyring, rng) = keyring(50);
    keyring.rotate(&rng);
    let debug = format!("{keyring:?}");
    assert_eq!(debug, "Keyring { active: 2, versions: [1, 2], .. }");
    let keys = base64_keys(&keyring);
    assert_eq!(keys.len(), 3);
    for key in keys {
        assert!(!debug.contains(&key));
        assert!(!format!("{keyring:#?}").contains(&key));
    }
}

#[test]
fn closures_are_rngs() {
    let rng = |buf: &mut [u8]| buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let keyring = Keyring::generate(&rng);
    assert_eq!(keyring.versions(), vec![1]);
    let sealed = keyring.seal("pm_1", b"ok", &rng).unwrap();
    assert_eq!(&keyring.open("pm_1", &sealed).unwrap()[..], b"ok");
}

// ------------------------------------------------------------------- proptests

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_seal_open_round_trip(
        seed in any::<u64>(),
        record_id in ".{0,40}",
        other_id in ".{0,40}",
        plaintext in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let rng = TestRng::new(seed);
        let mut keyring = Keyring::generate(&rng);
        let sealed = keyring.seal(&record_id, &plaintext, &rng).unwrap();
        prop_assert_eq!(&keyring.open(&record_id, &sealed).unwrap()[..], &plaintext[..]);
        if other_id != record_id {
            prop_assert_eq!(keyring.open(&other_id, &sealed).unwrap_err(), VaultError::Tampered);
        }
        keyring.rotate(&rng);
        let rewrapped = keyring.rewrap(&record_id, &sealed, &rng).unwrap();
        keyring.retire(1).unwrap();
        prop_assert_eq!(&keyring.open(&record_id, &rewrapped).unwrap()[..], &plaintext[..]);
    }

    #[test]
    fn prop_open_never_panics_on_arbitrary_input(
        seed in any::<u64>(),
        kek_version in 0u32..4,
        wrapped_key in proptest::collection::vec(any::<u8>(), 0..80),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..80),
        raw in any::<bool>(),
    ) {
        let rng = TestRng::new(seed);
        let keyring = Keyring::generate(&rng);
        let sealed = if raw {
            Sealed {
                kek_version,
                wrapped_key: String::from_utf8_lossy(&wrapped_key).into_owned(),
                ciphertext: String::from_utf8_lossy(&ciphertext).into_owned(),
            }
        } else {
            Sealed {
                kek_version,
                wrapped_key: STANDARD.encode(&wrapped_key),
                ciphertext: STANDARD.encode(&ciphertext),
            }
        };
        prop_assert!(keyring.open("pm_1", &sealed).is_err());
        prop_assert!(keyring.rewrap("pm_1", &sealed, &rng).is_err());
    }

    #[test]
    fn prop_from_toml_never_panics(text in "\\PC{0,200}") {
        let _ = Keyring::from_toml(&text);
    }
}
