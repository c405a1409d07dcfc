//! Manifest tests: round trips, duplicate keys, exact-bytes hashing, and one
//! test per validation rule checking the JSON path of its error.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use serde_json::{Value, json};

use super::*;
use crate::crypto::CryptoProvider;
use crate::crypto::rustcrypto::PROVIDER;
use elliptic_curve::sec1::ToSec1Point;

const COORD: &str = "ef27a4c0ddc5d2d2c3d6a9c1b8f0e1d2c3b4a5968778695a4b3c2d1e0f1a42f2";
const WEB: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const DB: &str = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789";

fn ed25519_spki(seed: u8) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
    format!("302a300506032b6570032100{}", hex::encode(key.as_bytes()))
}

fn x25519_spki(byte: u8) -> String {
    format!("302a300506032b656e032100{}", hex::encode(&[byte; 32]))
}

fn p384_spki() -> String {
    let secret = p384::SecretKey::from_slice(&[7u8; 48]).unwrap();
    let point = secret.public_key().as_affine().to_sec1_point(false);
    format!(
        "3076301006072a8648ce3d020106052b81040022036200{}",
        hex::encode(point.as_bytes())
    )
}

fn snp_entry() -> Value {
    json!({
        "Platform": "Metal-QEMU-SNP",
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213},
        "GuestPolicy": {"ABIMinor": 0, "ABIMajor": 0, "SMT": true, "MigrateMA": false, "Debug": false,
            "SingleSocket": false, "CXLAllowed": false, "MemAES256XTS": false, "RAPLDis": false,
            "CipherTextHidingDRAM": false, "PageSwapDisable": false},
        "PlatformInfo": {"SMTEnabled": true, "TSMEEnabled": false, "ECCEnabled": false, "RAPLDisabled": false,
            "CiphertextHidingDRAMEnabled": false, "AliasCheckComplete": false, "TIOEnabled": false},
        "AllowedChipIDs": ["ab".repeat(64)],
        "MinimumMitigationVector": 0
    })
}

fn tdx_entry() -> Value {
    json!({
        "Platform": "Metal-QEMU-TDX",
        "MinTCBEvaluationDataNumber": 17,
        "MrTd": "11".repeat(48),
        "MrSeam": "22".repeat(48),
        "Rtmrs": ["33".repeat(48), "44".repeat(48), "55".repeat(48), "66".repeat(48)],
        "Xfam": "e702060000000000",
        "AllowedPIIDs": ["77".repeat(16)],
        "MemoryIntegrity": true
    })
}

fn realistic() -> Value {
    json!({
        "Policies": {
            COORD: {"SANs": ["coordinator", "*"], "WorkloadSecretID": "apps/v1/StatefulSet/default/coordinator", "Role": "coordinator"},
            WEB: {"SANs": ["web", "10.0.0.1", "https://web.example"], "WorkloadSecretID": "apps/v1/Deployment/default/web"},
            DB: {"SANs": [], "WorkloadSecretID": "apps/v1/StatefulSet/default/db", "Role": ""}
        },
        "ReferenceValues": {"snp": [snp_entry()], "tdx": [tdx_entry()]},
        "WorkloadOwnerPubKeys": [ed25519_spki(1), p384_spki()],
        "SeedshareOwnerPubKeys": [x25519_spki(9), x25519_spki(10), x25519_spki(11)],
        "SeedshareThreshold": 2
    })
}

fn parse(v: &Value) -> Result<Manifest, ManifestError> {
    Manifest::from_json(&serde_json::to_vec_pretty(v).unwrap())
}

/// Validates `v` (which must parse) and returns the errors' `path: message`.
fn errors(v: &Value) -> Vec<String> {
    match parse(v).unwrap().validate() {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts validation fails with exactly one error, at `path`.
#[track_caller]
fn assert_one(v: &Value, path: &str) -> String {
    let m = parse(v).unwrap();
    let errs = m.validate().unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, path, "{errs:?}");
    errs[0].to_string()
}

#[test]
fn realistic_manifest_round_trips_and_validates() {
    let m = parse(&realistic()).unwrap();
    assert_eq!(m.validate(), Ok(()));
    let doc = m.doc();
    assert_eq!(doc.policies.len(), 3);
    assert_eq!(doc.reference_values.snp.len(), 1);
    assert_eq!(doc.reference_values.tdx.len(), 1);
    assert_eq!(doc.seedshare_threshold, 2);
    assert!(doc.policies[COORD].is_coordinator());
    assert_eq!(doc.policies[COORD].subject(), Some("coordinator"));
    assert_eq!(
        doc.policies[DB].subject(),
        Some("apps/v1/StatefulSet/default/db")
    );
    let again = serde_json::to_vec(doc).unwrap();
    let m2 = Manifest::from_json(&again).unwrap();
    assert_eq!(m2.doc(), doc);
    assert_eq!(m2.validate(), Ok(()));
    // The derived Deserialize agrees with the path-aware parser.
    let direct: ManifestDoc = serde_json::from_slice(&again).unwrap();
    assert_eq!(&direct, doc);
}

#[test]
fn minimal_example_from_notes_parses() {
    let mut v = json!({"Policies": {COORD: {"SANs": ["coordinator"], "Role": "coordinator"}},
        "ReferenceValues": {"snp": [snp_entry()]}});
    let m = parse(&v).unwrap();
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(m.doc().seedshare_threshold, 1);
    assert!(m.doc().workload_owner_pub_keys.is_empty());
    v["SeedshareThreshold"] = json!(1);
    assert_eq!(parse(&v).unwrap().doc(), m.doc());
}

#[test]
fn hash_is_over_exact_bytes() {
    let compact = serde_json::to_vec(&realistic()).unwrap();
    let pretty = serde_json::to_vec_pretty(&realistic()).unwrap();
    let a = Manifest::from_json(&compact).unwrap();
    let b = Manifest::from_json(&pretty).unwrap();
    assert_eq!(a.doc(), b.doc());
    assert_eq!(a.raw(), &compact[..]);
    assert_eq!(a.hash(&PROVIDER), PROVIDER.sha256(&[&compact]));
    assert_ne!(a.hash(&PROVIDER), b.hash(&PROVIDER));
    let mut spaced = compact.clone();
    spaced.push(b' ');
    let c = Manifest::from_json(&spaced).unwrap();
    assert_ne!(a.hash(&PROVIDER), c.hash(&PROVIDER));
}

// ---- parsing: duplicate keys, shapes, paths ----

fn dup(text: &str) -> String {
    match Manifest::from_json(text.as_bytes()) {
        Err(ManifestError::DuplicateKey { path }) => path,
        other => panic!("expected a duplicate key, got {other:?}"),
    }
}

#[test]
fn duplicate_top_level_key_refused() {
    assert_eq!(dup(r#"{"Policies":{},"Policies":{}}"#), "Policies");
}

#[test]
fn duplicate_policy_hash_refused() {
    let text = format!(
        r#"{{"Policies":{{"{WEB}":{{"SANs":["a"]}},"{WEB}":{{"SANs":["b"],"Role":"coordinator"}}}}}}"#
    );
    assert_eq!(dup(&text), format!("Policies[\"{WEB}\"]"));
}

#[test]
fn duplicate_key_inside_policy_refused() {
    let text = format!(r#"{{"Policies":{{"{COORD}":{{"SANs":["a"],"SANs":["b"]}}}}}}"#);
    assert_eq!(dup(&text), format!("Policies[\"{COORD}\"].SANs"));
}

#[test]
fn duplicate_key_in_reference_values_refused() {
    let text = r#"{"ReferenceValues":{"snp":[{},{"MinimumTCB":{"SNPVersion":1,"SNPVersion":2}}]}}"#;
    assert_eq!(dup(text), "ReferenceValues.snp[1].MinimumTCB.SNPVersion");
}

#[test]
fn malformed_json_refused() {
    for text in ["", "{", "{\"Policies\":{}} x", "[1,]"] {
        assert!(
            matches!(
                Manifest::from_json(text.as_bytes()),
                Err(ManifestError::Syntax(_))
            ),
            "{text:?}"
        );
    }
    assert!(matches!(
        Manifest::from_json(b"[]"),
        Err(ManifestError::Invalid { .. })
    ));
}

fn invalid_path(v: &Value) -> String {
    match parse(v) {
        Err(ManifestError::Invalid { path, .. }) => path,
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn snp_hex_length_error_names_field() {
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]["TrustedMeasurement"] = json!("abcd");
    assert_eq!(
        invalid_path(&v),
        "ReferenceValues.snp[0].TrustedMeasurement"
    );
    let err = parse(&v).unwrap_err().to_string();
    assert!(
        err.starts_with("ReferenceValues.snp[0].TrustedMeasurement: "),
        "{err}"
    );
}

#[test]
fn snp_chip_id_length_error_names_field() {
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]["AllowedChipIDs"] = json!(["ab".repeat(63)]);
    assert_eq!(invalid_path(&v), "ReferenceValues.snp[0].AllowedChipIDs");
}

#[test]
fn snp_tcb_out_of_range_names_field() {
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]["MinimumTCB"]["SNPVersion"] = json!(256);
    assert_eq!(invalid_path(&v), "ReferenceValues.snp[0].MinimumTCB");
}

#[test]
fn tdx_hex_length_error_names_field() {
    let mut v = realistic();
    v["ReferenceValues"]["tdx"] = json!([tdx_entry(), tdx_entry()]);
    v["ReferenceValues"]["tdx"][1]["Xfam"] = json!("e7020600");
    assert_eq!(invalid_path(&v), "ReferenceValues.tdx[1].Xfam");
    v["ReferenceValues"]["tdx"][1]["Xfam"] = json!("e702060000000000");
    v["ReferenceValues"]["tdx"][1]["Rtmrs"] = json!(["33".repeat(48)]);
    assert_eq!(invalid_path(&v), "ReferenceValues.tdx[1].Rtmrs");
}

#[test]
fn unknown_fields_refused_with_path() {
    let mut v = realistic();
    v["Extra"] = json!(1);
    assert_eq!(invalid_path(&v), "Extra");
    let mut v = realistic();
    v["Policies"][WEB]["Sans"] = json!([]);
    assert_eq!(invalid_path(&v), format!("Policies[\"{WEB}\"]"));
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]["APEIP"] = json!("0080b004");
    assert_eq!(invalid_path(&v), "ReferenceValues.snp[0].APEIP");
    let mut v = realistic();
    v["ReferenceValues"]["sev"] = json!([]);
    assert_eq!(invalid_path(&v), "ReferenceValues.sev");
}

#[test]
fn wrong_types_refused_with_path() {
    let mut v = realistic();
    v["WorkloadOwnerPubKeys"] = json!("abcd");
    assert_eq!(invalid_path(&v), "WorkloadOwnerPubKeys");
    let mut v = realistic();
    v["SeedshareThreshold"] = json!(-1);
    assert_eq!(invalid_path(&v), "SeedshareThreshold");
    let mut v = realistic();
    v["Policies"] = json!([]);
    assert_eq!(invalid_path(&v), "Policies");
}

// ---- validation: one test per rule ----

fn with_policy(key: &str, policy: Value) -> Value {
    let mut v = realistic();
    v["Policies"][key] = policy;
    v
}

#[test]
fn rule_policy_key_must_be_64_hex() {
    let short = "abcd";
    let msg = assert_one(
        &with_policy(short, json!({"SANs": ["x"]})),
        "Policies[\"abcd\"]",
    );
    assert!(msg.contains("64 hex digits"), "{msg}");
    let not_hex = "g".repeat(64);
    assert_one(
        &with_policy(&not_hex, json!({"SANs": ["x"]})),
        &format!("Policies[\"{not_hex}\"]"),
    );
    let long = "a".repeat(66);
    assert_one(
        &with_policy(&long, json!({"SANs": ["x"]})),
        &format!("Policies[\"{long}\"]"),
    );
}

#[test]
fn rule_role_must_be_known() {
    let v = with_policy(WEB, json!({"SANs": ["web"], "Role": "admin"}));
    let msg = assert_one(&v, &format!("Policies[\"{WEB}\"].Role"));
    assert!(msg.contains("unknown role \"admin\""), "{msg}");
    let v = with_policy(WEB, json!({"SANs": ["web"], "Role": "Coordinator"}));
    assert_one(&v, &format!("Policies[\"{WEB}\"].Role"));
}

#[test]
fn rule_policy_must_yield_subject() {
    let v = with_policy(WEB, json!({"SANs": []}));
    let msg = assert_one(&v, &format!("Policies[\"{WEB}\"]"));
    assert!(msg.contains("no certificate subject"), "{msg}");
    let v = with_policy(WEB, json!({}));
    assert_one(&v, &format!("Policies[\"{WEB}\"]"));
}

#[test]
fn rule_sans_non_empty() {
    let v = with_policy(WEB, json!({"SANs": ["web", ""]}));
    assert_one(&v, &format!("Policies[\"{WEB}\"].SANs[1]"));
}

#[test]
fn rule_sans_not_repeated() {
    let v = with_policy(WEB, json!({"SANs": ["web", "db", "web"]}));
    let msg = assert_one(&v, &format!("Policies[\"{WEB}\"].SANs[2]"));
    assert!(msg.contains("duplicate SAN"), "{msg}");
}

#[test]
fn rule_needs_coordinator_policy() {
    let mut v = realistic();
    v["Policies"][COORD]["Role"] = json!("");
    let msg = assert_one(&v, "Policies");
    assert!(msg.contains("coordinator"), "{msg}");
    let mut v = realistic();
    v["Policies"] = json!({});
    assert_one(&v, "Policies");
}

#[test]
fn several_coordinator_policies_allowed() {
    let v = with_policy(
        WEB,
        json!({"SANs": ["coordinator-green"], "Role": "coordinator"}),
    );
    assert_eq!(errors(&v), Vec::<String>::new());
}

#[test]
fn rule_reference_values_not_empty() {
    let mut v = realistic();
    v["ReferenceValues"] = json!({});
    assert_one(&v, "ReferenceValues");
    let mut v = realistic();
    v["ReferenceValues"] = json!({"snp": [], "tdx": []});
    assert_one(&v, "ReferenceValues");
}

#[test]
fn rule_snp_required_fields() {
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]
        .as_object_mut()
        .unwrap()
        .remove("TrustedMeasurement");
    assert_one(&v, "ReferenceValues.snp[0].TrustedMeasurement");
    let mut v = realistic();
    v["ReferenceValues"]["snp"][0]
        .as_object_mut()
        .unwrap()
        .remove("MinimumTCB");
    assert_one(&v, "ReferenceValues.snp[0].MinimumTCB");
}

#[test]
fn rule_tdx_required_fields() {
    for field in [
        "MrTd",
        "MrSeam",
        "Rtmrs",
        "Xfam",
        "MinTCBEvaluationDataNumber",
    ] {
        let mut v = realistic();
        v["ReferenceValues"]["tdx"][0]
            .as_object_mut()
            .unwrap()
            .remove(field);
        let path = format!("ReferenceValues.tdx[0].{field}");
        assert_eq!(assert_one(&v, &path), format!("{path}: required"));
    }
}

#[test]
fn rule_tdx_entry_consistent() {
    let mut v = realistic();
    v["ReferenceValues"]["tdx"][0]["MrConfigId"] = json!("aa".repeat(48));
    v["ReferenceValues"]["tdx"][0]["PolicyHash"] = json!("bb".repeat(32));
    let errs = parse(&v).unwrap().validate().unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "ReferenceValues.tdx[0]");
}

fn insecure_snp() -> Value {
    let mut e = snp_entry();
    e["InsecureTrustedRoot"] = json!({"ARK": "3000", "ASK": "3000"});
    e
}

#[test]
fn rule_secure_and_insecure_not_mixed() {
    let mut v = realistic();
    v["ReferenceValues"]["snp"] = json!([snp_entry(), insecure_snp()]);
    v["ReferenceValues"].as_object_mut().unwrap().remove("tdx");
    let msg = assert_one(&v, "ReferenceValues");
    assert!(msg.contains("snp[1]") && msg.contains("mixed"), "{msg}");
    // TDX counts as secure.
    let mut v = realistic();
    v["ReferenceValues"]["snp"] = json!([insecure_snp()]);
    assert_one(&v, "ReferenceValues");
    // Only insecure entries: allowed (the simulated TEE, chosen explicitly).
    let mut v = realistic();
    v["ReferenceValues"] = json!({"snp": [insecure_snp(), insecure_snp()]});
    assert_eq!(errors(&v), Vec::<String>::new());
}

fn insecure_tdx(v: &Value) -> Value {
    let mut e = v["ReferenceValues"]["tdx"][0].clone();
    e["InsecureTrustedRoot"] = json!({"RootCA": "3000"});
    e
}

#[test]
fn rule_secure_and_insecure_tdx_not_mixed() {
    // An insecure TDX entry beside a secure one (SNP or TDX): refused,
    // naming the insecure entry.
    let mut v = realistic();
    let tdx = insecure_tdx(&v);
    v["ReferenceValues"]["tdx"] = json!([tdx]);
    let msg = assert_one(&v, "ReferenceValues");
    assert!(msg.contains("tdx[0]") && msg.contains("mixed"), "{msg}");
    let mut v = realistic();
    let tdx = insecure_tdx(&v);
    v["ReferenceValues"] = json!({"tdx": [v["ReferenceValues"]["tdx"][0].clone(), tdx]});
    let msg = assert_one(&v, "ReferenceValues");
    assert!(msg.contains("tdx[1]") && !msg.contains("snp"), "{msg}");
    // Insecure SNP and insecure TDX together: allowed (both simulated).
    let mut v = realistic();
    let tdx = insecure_tdx(&v);
    v["ReferenceValues"] = json!({"snp": [insecure_snp()], "tdx": [tdx]});
    assert_eq!(errors(&v), Vec::<String>::new());
    // The root is hex of DER, and nothing else is accepted beside it.
    let mut v = realistic();
    let mut tdx = insecure_tdx(&v);
    tdx["InsecureTrustedRoot"]["Extra"] = json!("00");
    v["ReferenceValues"] = json!({"tdx": [tdx]});
    assert!(parse(&v).is_err());
}

#[test]
fn rule_owner_keys_parse() {
    let mut v = realistic();
    v["WorkloadOwnerPubKeys"][1] = json!("zz");
    let msg = assert_one(&v, "WorkloadOwnerPubKeys[1]");
    assert!(msg.contains("not hex"), "{msg}");
    v["WorkloadOwnerPubKeys"][1] = json!("300a");
    let msg = assert_one(&v, "WorkloadOwnerPubKeys[1]");
    assert!(msg.contains("not a SubjectPublicKeyInfo"), "{msg}");
    // Truncated Ed25519 key.
    v["WorkloadOwnerPubKeys"][1] = json!(&ed25519_spki(2)[..80]);
    assert_one(&v, "WorkloadOwnerPubKeys[1]");
}

#[test]
fn rule_owner_keys_ed25519_or_p384() {
    let mut v = realistic();
    v["WorkloadOwnerPubKeys"][0] = json!(x25519_spki(1));
    let msg = assert_one(&v, "WorkloadOwnerPubKeys[0]");
    assert!(msg.contains("unsupported key algorithm"), "{msg}");
    // P-256 (secp256r1) is refused.
    let p256 = format!(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200{}",
        "04".to_string() + &"11".repeat(64)
    );
    v["WorkloadOwnerPubKeys"][0] = json!(p256);
    let msg = assert_one(&v, "WorkloadOwnerPubKeys[0]");
    assert!(msg.contains("P-384"), "{msg}");
    // A P-384 point that is not on the curve.
    let off_curve = format!(
        "3076301006072a8648ce3d020106052b81040022036200{}",
        "04".to_string() + &"11".repeat(96)
    );
    v["WorkloadOwnerPubKeys"][0] = json!(off_curve);
    assert_one(&v, "WorkloadOwnerPubKeys[0]");
}

#[test]
fn owner_key_classification() {
    assert!(matches!(
        OwnerKey::from_hex(&ed25519_spki(3)),
        Ok(OwnerKey::Ed25519(_))
    ));
    assert!(matches!(
        OwnerKey::from_hex(&p384_spki()),
        Ok(OwnerKey::P384(p)) if p.len() == 97
    ));
    assert_eq!(
        SeedshareKey::from_hex(&x25519_spki(5)),
        Ok(SeedshareKey([5; 32]))
    );
    // Uppercase hex is the same key.
    assert_eq!(
        OwnerKey::from_hex(&ed25519_spki(3).to_uppercase()),
        OwnerKey::from_hex(&ed25519_spki(3))
    );
}

#[test]
fn rule_owner_keys_not_repeated() {
    let mut v = realistic();
    v["WorkloadOwnerPubKeys"] =
        json!([ed25519_spki(1), p384_spki(), ed25519_spki(1).to_uppercase()]);
    let msg = assert_one(&v, "WorkloadOwnerPubKeys[2]");
    assert!(msg.contains("duplicate"), "{msg}");
}

#[test]
fn rule_seedshare_keys_x25519() {
    let mut v = realistic();
    v["SeedshareOwnerPubKeys"][1] = json!(ed25519_spki(1));
    let msg = assert_one(&v, "SeedshareOwnerPubKeys[1]");
    assert!(msg.contains("expected X25519"), "{msg}");
    v["SeedshareOwnerPubKeys"][1] = json!(x25519_spki(0));
    assert_one(&v, "SeedshareOwnerPubKeys[1]");
    v["SeedshareOwnerPubKeys"][1] = json!("0102");
    assert_one(&v, "SeedshareOwnerPubKeys[1]");
}

#[test]
fn rule_seedshare_keys_not_repeated() {
    let mut v = realistic();
    v["SeedshareOwnerPubKeys"][2] = json!(x25519_spki(9));
    assert_one(&v, "SeedshareOwnerPubKeys[2]");
}

#[test]
fn rule_threshold_range() {
    let mut v = realistic();
    v["SeedshareThreshold"] = json!(0);
    assert_one(&v, "SeedshareThreshold");
    v["SeedshareThreshold"] = json!(4);
    let msg = assert_one(&v, "SeedshareThreshold");
    assert!(msg.contains("(3)"), "{msg}");
    v["SeedshareThreshold"] = json!(3);
    assert_eq!(errors(&v), Vec::<String>::new());
    // Without seed-share owners any threshold >= 1 is accepted.
    v["SeedshareOwnerPubKeys"] = json!([]);
    v["SeedshareThreshold"] = json!(5);
    assert_eq!(errors(&v), Vec::<String>::new());
    v["SeedshareThreshold"] = json!(0);
    assert_one(&v, "SeedshareThreshold");
}

#[test]
fn errors_are_aggregated() {
    let mut v = realistic();
    v["Policies"] = json!({"abc": {"SANs": [""], "Role": "x"}});
    v["ReferenceValues"] = json!({});
    v["WorkloadOwnerPubKeys"] = json!(["00"]);
    v["SeedshareThreshold"] = json!(0);
    let paths: Vec<String> = parse(&v)
        .unwrap()
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "Policies[\"abc\"]",
            "Policies[\"abc\"].Role",
            "Policies[\"abc\"].SANs[0]",
            "Policies",
            "ReferenceValues",
            "WorkloadOwnerPubKeys[0]",
            "SeedshareThreshold",
        ]
    );
}

#[test]
fn rule_policy_hashes_unique_ignoring_case() {
    let upper = WEB.to_uppercase();
    let v = with_policy(&upper, json!({"SANs": ["web2"]}));
    let msg = assert_one(&v, &format!("Policies[\"{WEB}\"]"));
    assert!(
        msg.contains(&format!("same policy hash as Policies[\"{upper}\"]")),
        "{msg}"
    );
}

#[test]
fn escaped_duplicate_key_refused() {
    assert_eq!(dup(r#"{"Policies":{},"Pol\u0069cies":{}}"#), "Policies");
}

#[test]
fn accessors() {
    let m = parse(&realistic()).unwrap();
    let doc = m.doc();
    let coord: [u8; 32] = hex::decode_array(COORD).unwrap();
    let db: [u8; 32] = hex::decode_array(DB).unwrap();
    assert_eq!(doc.coordinator_policy_hashes(), vec![coord]);
    assert!(doc.policy(&coord).unwrap().is_coordinator());
    assert_eq!(
        doc.policy(&db).unwrap().workload_secret_id,
        "apps/v1/StatefulSet/default/db"
    );
    assert_eq!(doc.policy(&[0; 32]), None);
    assert_eq!(doc.owner_keys().len(), 2);
    assert_eq!(
        doc.seedshare_keys(),
        vec![
            SeedshareKey([9; 32]),
            SeedshareKey([10; 32]),
            SeedshareKey([11; 32])
        ]
    );
}
