//! `accord keys`, `accord manifest generate|validate` and `accord policy
//! annotate` end to end: the real binary in a temporary directory, keys
//! cross-checked with OpenSSL, policy hashes recomputed independently.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use accord_core::manifest::{OwnerKey, SeedshareKey};
use base64ct::{Base64, Encoding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod common;
use common::{fails, ok, sha256_hex, stderr};

fn accord(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// The annotation value computed independently of accord: gzip via flate2,
/// base64 via base64ct.
fn gzip_b64(bytes: &[u8]) -> String {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    Base64::encode_string(&encoder.finish().unwrap())
}

fn init_data(policy: &str) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = '''\npackage agent_policy\n# {policy}\n'''\n"
    )
}

fn openssl_accepts(file: &Path) {
    let out = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(file)
        .args(["-noout", "-text"])
        .output()
        .expect("openssl must be installed for these tests (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl refused {}: {}",
        file.display(),
        stderr(&out)
    );
}

fn mode(file: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

fn snp_reference_values() -> Value {
    json!({"snp": [{
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
    }]})
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}

#[test]
fn keys_new_writes_0600_pem_that_openssl_and_the_manifest_accept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&[&str], &str, &str); 3] = [
        (&["--workload-owner"], "workload-owner.pem", "ed25519"),
        (
            &["--workload-owner", "--p384", "--out", "p384.pem"],
            "p384.pem",
            "p384",
        ),
        (&["--seedshare-owner"], "seedshare-owner.pem", "x25519"),
    ];
    for (flags, file, kind) in cases {
        let mut args = vec!["keys", "new", "--json"];
        args.extend_from_slice(flags);
        let printed: Value = serde_json::from_str(&ok(&accord(d, &args))).unwrap();
        assert_eq!(printed["file"], file);
        assert_eq!(printed["kind"], kind);
        let public = printed["public_key"].as_str().unwrap().to_string();

        let path = d.join(file);
        assert_eq!(mode(&path), 0o600, "{file}");
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        openssl_accepts(&path);

        // OpenSSL derives the same public key.
        let out = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        let openssl_hex: String = out.stdout.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(openssl_hex, public, "{file}");

        if kind == "x25519" {
            SeedshareKey::from_hex(&public).unwrap();
            assert!(OwnerKey::from_hex(&public).is_err());
        } else {
            OwnerKey::from_hex(&public).unwrap();
            assert!(SeedshareKey::from_hex(&public).is_err());
        }

        // Without --json: just the hex; `keys public` prints the same.
        let shown = ok(&accord(d, &["keys", "public", file]));
        assert_eq!(shown.trim(), public);
    }

    // Refuses to overwrite; --force replaces (with a new key).
    let before = std::fs::read(d.join("workload-owner.pem")).unwrap();
    fails(
        &accord(d, &["keys", "new", "--workload-owner"]),
        2,
        &["already exists", "--force"],
    );
    assert_eq!(std::fs::read(d.join("workload-owner.pem")).unwrap(), before);
    ok(&accord(d, &["keys", "new", "--workload-owner", "--force"]));
    assert_ne!(std::fs::read(d.join("workload-owner.pem")).unwrap(), before);
    assert_eq!(mode(&d.join("workload-owner.pem")), 0o600);

    // A role is required; --p384 is for workload owners only.
    fails(&accord(d, &["keys", "new"]), 2, &[]);
    fails(
        &accord(d, &["keys", "new", "--seedshare-owner", "--p384"]),
        2,
        &[],
    );
}

#[test]
fn keys_public_reads_openssl_generated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for alg in ["ed25519", "x25519"] {
        let file = d.join(format!("{alg}.pem"));
        let status = Command::new("openssl")
            .args(["genpkey", "-algorithm", alg, "-out"])
            .arg(&file)
            .status()
            .expect("openssl must be installed");
        assert!(status.success());
        let out = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        let expected: String = out.stdout.iter().map(|b| format!("{b:02x}")).collect();
        let shown = ok(&accord(d, &["keys", "public", file.to_str().unwrap()]));
        assert_eq!(shown.trim(), expected);
    }
    // OpenSSL's SEC1 ("EC PRIVATE KEY") P-384 keys are read too.
    let status = Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out"])
        .arg(d.join("ec.pem"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(d.join("ec.pem"))
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(d.join("ec.pem"))
        .output()
        .unwrap();
    let expected: String = out.stdout.iter().map(|b| format!("{b:02x}")).collect();
    let shown: Value =
        serde_json::from_str(&ok(&accord(d, &["keys", "public", "ec.pem", "--json"]))).unwrap();
    assert_eq!(shown["public_key"], expected.as_str());
    assert_eq!(shown["kind"], "p384");

    write(d, "junk.pem", "not a key");
    fails(
        &accord(d, &["keys", "public", "junk.pem"]),
        2,
        &["junk.pem"],
    );
}

const WEB_YAML: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      annotations:
        io.katacontainers.config.hypervisor.cc_init_data: "@WEB@"
    spec:
      runtimeClassName: kata-cc
      containers: [{name: web, image: nginx}]
"#;

const REST_YAML: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: coordinator
  namespace: accord
spec:
  template:
    metadata:
      annotations:
        io.katacontainers.config.hypervisor.cc_init_data: "@COORD@"
        accord.dev/pod-role: coordinator
    spec:
      containers: [{name: coordinator, image: accord/coordinator}]
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: data
  annotations:
    io.katacontainers.config.hypervisor.cc_init_data: "@DB@"
    accord.dev/sans: "db.example.com, 10.0.0.7 ,db"
    accord.dev/workload-secret-id: my-db-secret
spec:
  containers: [{name: db, image: postgres}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  key: value
"#;

/// Writes a workspace: resources (two files in one directory), reference
/// values and keys. Returns the three TOML documents.
fn workspace(d: &Path) -> [String; 3] {
    let docs = [init_data("web"), init_data("coordinator"), init_data("db")];
    std::fs::create_dir(d.join("deploy")).unwrap();
    write(
        d,
        "deploy/a-web.yaml",
        WEB_YAML.replace("@WEB@", &gzip_b64(docs[0].as_bytes())),
    );
    write(
        d,
        "deploy/b-rest.yml",
        REST_YAML
            .replace("@COORD@", &gzip_b64(docs[1].as_bytes()))
            .replace("@DB@", &gzip_b64(docs[2].as_bytes())),
    );
    write(d, "deploy/README.md", "not YAML, ignored");
    write(d, "refvals.json", snp_reference_values().to_string());
    docs
}

#[test]
fn manifest_generate_builds_a_valid_manifest_from_resources() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = workspace(d);
    let owner: Value = serde_json::from_str(&ok(&accord(
        d,
        &["keys", "new", "--workload-owner", "--json"],
    )))
    .unwrap();
    let share1: Value = serde_json::from_str(&ok(&accord(
        d,
        &["keys", "new", "--seedshare-owner", "--json"],
    )))
    .unwrap();
    let share2 = ok(&accord(
        d,
        &["keys", "new", "--seedshare-owner", "--out", "s2.pem"],
    ));
    write(d, "s2.pub", &share2);

    let out = accord(
        d,
        &[
            "manifest",
            "generate",
            "deploy",
            "--reference-values",
            "refvals.json",
            "--workload-owner-key",
            "workload-owner.pem",
            "--seedshare-owner-key",
            "seedshare-owner.pem",
            "--seedshare-owner-key",
            "s2.pub",
            "--seedshare-threshold",
            "2",
        ],
    );
    let summary = ok(&out);
    assert!(
        stderr(&out).contains("ConfigMap default/settings"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("skipped"), "{}", stderr(&out));

    let [web, coord, db] = docs.each_ref().map(|t| sha256_hex(t.as_bytes()));
    for line in [
        format!("{coord}  coordinator  coordinator,coordinator.accord,"),
        format!("{db}  workload     db.example.com,10.0.0.7,db"),
        format!("{web}  workload     web,web.default,"),
    ] {
        assert!(summary.contains(&line), "{line:?} not in {summary}");
    }

    let text = std::fs::read_to_string(d.join("manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        m["Policies"][&web],
        json!({
            "SANs": ["web", "web.default", "web.default.svc", "web.default.svc.cluster.local"],
            "WorkloadSecretID": "apps/v1/Deployment/default/web"
        })
    );
    assert_eq!(
        m["Policies"][&coord],
        json!({
            "SANs": ["coordinator", "coordinator.accord", "coordinator.accord.svc",
                     "coordinator.accord.svc.cluster.local"],
            "WorkloadSecretID": "apps/v1/StatefulSet/accord/coordinator",
            "Role": "coordinator"
        })
    );
    assert_eq!(
        m["Policies"][&db],
        json!({"SANs": ["db.example.com", "10.0.0.7", "db"], "WorkloadSecretID": "my-db-secret"})
    );
    assert_eq!(m["Policies"].as_object().unwrap().len(), 3);
    assert_eq!(m["ReferenceValues"]["snp"][0]["ProductName"], "Milan");
    assert_eq!(m["WorkloadOwnerPubKeys"], json!([owner["public_key"]]));
    assert_eq!(
        m["SeedshareOwnerPubKeys"],
        json!([share1["public_key"], share2.trim()])
    );
    assert_eq!(m["SeedshareThreshold"], 2);
    // Stable order: the top-level fields in schema order, policies sorted.
    let positions = |needles: &[&str]| -> Vec<usize> {
        needles
            .iter()
            .map(|n| text.find(&format!("\"{n}\"")).unwrap())
            .collect()
    };
    let fields = positions(&[
        "Policies",
        "ReferenceValues",
        "WorkloadOwnerPubKeys",
        "SeedshareOwnerPubKeys",
        "SeedshareThreshold",
    ]);
    assert!(fields.is_sorted(), "{text}");
    let mut hashes = [web.as_str(), coord.as_str(), db.as_str()];
    hashes.sort_unstable();
    assert!(positions(&hashes).is_sorted(), "{text}");

    // The policies directory holds the exact TOML bytes.
    for (hash, doc) in [(&web, &docs[0]), (&coord, &docs[1]), (&db, &docs[2])] {
        let stored = std::fs::read(d.join("policies").join(format!("{hash}.toml"))).unwrap();
        assert_eq!(stored, doc.as_bytes());
    }

    // The core parser and validator accept it, and so does `validate`.
    accord_core::manifest::Manifest::from_json(text.as_bytes())
        .unwrap()
        .validate()
        .unwrap();
    let out = ok(&accord(d, &["manifest", "validate"]));
    assert!(out.starts_with("VALID: manifest.json"), "{out}");

    // Regenerating gives the same bytes (stable output).
    ok(&accord(
        d,
        &[
            "manifest",
            "generate",
            "deploy/a-web.yaml",
            "deploy/b-rest.yml",
            "--reference-values",
            "refvals.json",
            "--workload-owner-key",
            "workload-owner.pem",
            "--seedshare-owner-key",
            "seedshare-owner.pem",
            "--seedshare-owner-key",
            "s2.pub",
            "--seedshare-threshold",
            "2",
            "-o",
            "again.json",
            "--policies-dir",
            "elsewhere",
        ],
    ));
    assert_eq!(std::fs::read_to_string(d.join("again.json")).unwrap(), text);
    assert!(d.join("elsewhere").join(format!("{db}.toml")).is_file());
}

#[test]
fn policy_annotate_prints_a_value_generate_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = init_data("annotated");
    write(d, "policy.toml", &doc);
    let out = accord(d, &["policy", "annotate", "policy.toml"]);
    let value = ok(&out);
    assert!(stderr(&out).contains(&sha256_hex(doc.as_bytes())));
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\n  annotations:\n    \
         io.katacontainers.config.hypervisor.cc_init_data: {}\n    accord.dev/pod-role: coordinator\n",
        value.trim()
    );
    write(d, "pod.yaml", yaml);
    write(d, "rv.json", snp_reference_values().to_string());
    let summary = ok(&accord(
        d,
        &[
            "manifest",
            "generate",
            "pod.yaml",
            "--reference-values",
            "rv.json",
        ],
    ));
    assert!(summary.contains(&sha256_hex(doc.as_bytes())), "{summary}");

    write(d, "bad.toml", "a = = 1");
    fails(
        &accord(d, &["policy", "annotate", "bad.toml"]),
        1,
        &["not a TOML document"],
    );
}

#[test]
fn initdata_annotation_is_base64_of_gzip_of_the_toml() {
    use std::io::Read;
    let doc = init_data("library");
    let value = accord_cli::initdata::initdata_annotation(&doc);
    let gz = Base64::decode_vec(&value).unwrap();
    let mut back = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, doc);
    let toml = accord_cli::initdata::decode_annotation(&value).unwrap();
    assert_eq!(
        accord_cli::initdata::policy_hash(&toml).to_vec(),
        Sha256::digest(doc.as_bytes()).to_vec()
    );
}

/// Runs `manifest generate` on one Pod with this annotation value, as the
/// only (coordinator) resource.
fn generate_with_annotation(value: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: ns\n  annotations:\n    \
         io.katacontainers.config.hypervisor.cc_init_data: \"{value}\"\n    accord.dev/pod-role: coordinator\n"
    );
    write(d, "pod.yaml", yaml);
    write(d, "rv.json", snp_reference_values().to_string());
    let out = accord(
        d,
        &[
            "manifest",
            "generate",
            "pod.yaml",
            "--reference-values",
            "rv.json",
        ],
    );
    (dir, out)
}

#[test]
fn manifest_generate_refuses_bad_init_data() {
    let location = "pod.yaml, document 0, Pod ns/bad";
    let (dir, out) = generate_with_annotation("not*base64");
    fails(&out, 1, &[location, "not base64"]);
    assert!(!dir.path().join("manifest.json").exists());
    assert!(!dir.path().join("policies").exists());

    let (_dir, out) = generate_with_annotation(&Base64::encode_string(b"a = 1\n"));
    fails(&out, 1, &[location, "not gzip"]);

    let (_dir, out) = generate_with_annotation(&gzip_b64(b"this is not = = toml"));
    fails(&out, 1, &[location, "not a TOML document"]);

    let (_dir, out) = generate_with_annotation(&gzip_b64(&[0xff, 0xfe]));
    fails(&out, 1, &[location, "not UTF-8"]);

    // A gzip bomb: 17 MiB of spaces compress to a few KiB.
    let (_dir, out) = generate_with_annotation(&gzip_b64(&vec![b' '; 17 << 20]));
    fails(&out, 1, &[location, "more than 16 MiB"]);
}

#[test]
fn manifest_generate_refuses_one_hash_with_conflicting_sans() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let value = gzip_b64(init_data("shared").as_bytes());
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: one\n  annotations:\n    \
         io.katacontainers.config.hypervisor.cc_init_data: {value}\n    accord.dev/pod-role: coordinator\n\
         ---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: two\n  annotations:\n    \
         io.katacontainers.config.hypervisor.cc_init_data: {value}\n    accord.dev/pod-role: coordinator\n"
    );
    write(d, "pods.yaml", yaml);
    write(d, "rv.json", snp_reference_values().to_string());
    let out = accord(
        d,
        &[
            "manifest",
            "generate",
            "pods.yaml",
            "--reference-values",
            "rv.json",
        ],
    );
    fails(
        &out,
        1,
        &[
            "pods.yaml, document 1, Pod default/two",
            "same policy hash",
            "pods.yaml, document 0, Pod default/one",
            "different SANs",
        ],
    );
    assert!(!d.join("manifest.json").exists());
}

#[test]
fn manifest_generate_refuses_init_data_outside_the_pod_template() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let value = gzip_b64(init_data("misplaced").as_bytes());
    write(
        d,
        "deploy.yaml",
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    \
             io.katacontainers.config.hypervisor.cc_init_data: {value}\nspec: {{template: {{metadata: {{}}}}}}\n"
        ),
    );
    write(d, "rv.json", snp_reference_values().to_string());
    fails(
        &accord(
            d,
            &[
                "manifest",
                "generate",
                "deploy.yaml",
                "--reference-values",
                "rv.json",
            ],
        ),
        1,
        &["Deployment default/web", "pod template"],
    );
}

#[test]
fn manifest_generate_without_init_data_hints_at_the_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "plain.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain}\n\
         spec: {template: {metadata: {labels: {a: b}}}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n",
    );
    write(d, "rv.json", snp_reference_values().to_string());
    let out = accord(
        d,
        &[
            "manifest",
            "generate",
            "plain.yaml",
            "--reference-values",
            "rv.json",
        ],
    );
    fails(
        &out,
        1,
        &[
            "Deployment default/plain: no init-data annotation: not a confidential workload",
            "did you add the init-data annotation (`io.katacontainers.config.hypervisor.cc_init_data`)?",
        ],
    );
    assert!(!d.join("manifest.json").exists());
}

#[test]
fn manifest_generate_names_the_json_path_of_bad_reference_values() {
    let (dir, _) = generate_with_annotation(&gzip_b64(init_data("x").as_bytes()));
    let d = dir.path();
    std::fs::remove_file(d.join("manifest.json")).unwrap();

    // A shape error (hex too short) while parsing.
    let mut rv = snp_reference_values();
    rv["snp"][0]["TrustedMeasurement"] = json!("abcd");
    write(d, "rv.json", rv.to_string());
    let args = [
        "manifest",
        "generate",
        "pod.yaml",
        "--reference-values",
        "rv.json",
    ];
    fails(
        &accord(d, &args),
        1,
        &["rv.json", "ReferenceValues.snp[0].TrustedMeasurement"],
    );

    // A validation rule (MinimumTCB required), and an empty list: every
    // error is listed with its path, nothing is written.
    let mut rv = snp_reference_values();
    rv["snp"][0].as_object_mut().unwrap().remove("MinimumTCB");
    write(d, "rv.json", rv.to_string());
    fails(
        &accord(d, &args),
        1,
        &[
            "nothing written",
            "ReferenceValues.snp[0].MinimumTCB: required",
        ],
    );
    write(d, "rv.json", r#"{"snp": []}"#);
    fails(
        &accord(d, &args),
        1,
        &["ReferenceValues: no snp or tdx entry"],
    );
    assert!(!d.join("manifest.json").exists());

    // Unusable file: exit 2.
    fails(
        &accord(
            d,
            &[
                "manifest",
                "generate",
                "pod.yaml",
                "--reference-values",
                "missing.json",
            ],
        ),
        2,
        &["missing.json"],
    );
}

#[test]
fn manifest_generate_refuses_a_key_of_the_wrong_role() {
    let (dir, _) = generate_with_annotation(&gzip_b64(init_data("x").as_bytes()));
    let d = dir.path();
    ok(&accord(d, &["keys", "new", "--seedshare-owner"]));
    fails(
        &accord(
            d,
            &[
                "manifest",
                "generate",
                "pod.yaml",
                "--reference-values",
                "rv.json",
                "--workload-owner-key",
                "seedshare-owner.pem",
            ],
        ),
        2,
        &["seedshare-owner.pem", "not a workload-owner"],
    );
}

#[test]
fn manifest_validate_reports_missing_and_invalid_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        &accord(d, &["manifest", "validate"]),
        2,
        &["manifest.json", "did you run `accord manifest generate`?"],
    );

    let manifest = json!({
        "Policies": {
            "ab".repeat(32): {"SANs": ["web", "web"], "Role": "boss"}
        },
        "ReferenceValues": snp_reference_values(),
        "WorkloadOwnerPubKeys": ["00"],
        "SeedshareThreshold": 0
    });
    write(d, "m.json", manifest.to_string());
    let key = "ab".repeat(32);
    fails(
        &accord(d, &["manifest", "validate", "m.json"]),
        1,
        &[
            &format!("Policies[\"{key}\"].Role: unknown role"),
            &format!("Policies[\"{key}\"].SANs[1]: duplicate SAN"),
            "Policies: no policy has the \"coordinator\" role",
            "WorkloadOwnerPubKeys[0]:",
            "SeedshareThreshold: must be at least 1",
        ],
    );

    write(d, "syntax.json", r#"{"Policies": {}, "Policies": {}}"#);
    fails(
        &accord(d, &["manifest", "validate", "syntax.json"]),
        1,
        &["Policies: duplicate key"],
    );
}
