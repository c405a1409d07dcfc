//! The init-data TOML document `accord generate` writes for a pod: the
//! Kata agent policy (`policy.rego`) and accord's own keys
//! (`accord.toml`: the workload's identity), so that two workloads with
//! the same pod spec still get distinct policy hashes and the manifest's
//! entry for a hash names exactly one workload.

use accord_core::manifest::PolicyEntry;

/// TOML basic string for `s`, escaped.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A multi-line value: a TOML multi-line literal string where the text
/// allows it (readable in `kubectl get -o yaml | base64 -d | gunzip`),
/// else an escaped basic string.
fn toml_text(s: &str) -> String {
    let literal_ok = !s.contains("'''")
        && !s.ends_with('\'')
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !(c.is_control()));
    if literal_ok {
        format!("'''\n{s}'''")
    } else {
        toml_string(s)
    }
}

/// Who the init-data belongs to.
pub struct Identity<'a> {
    /// `apiVersion`.
    pub api_version: &'a str,
    /// `kind`.
    pub kind: &'a str,
    /// `metadata.namespace` (default `default`).
    pub namespace: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// The manifest entry (SANs, workload secret id, role).
    pub entry: &'a PolicyEntry,
}

/// accord's keys (`accord.toml` in the init-data).
fn accord_keys(id: &Identity) -> String {
    let sans: Vec<String> = id.entry.sans.iter().map(|s| toml_string(s)).collect();
    format!(
        "# accord: the workload this policy belongs to\n\
         api-version = {}\nkind = {}\nnamespace = {}\nname = {}\n\
         pod-role = {}\nworkload-secret-id = {}\nsans = [{}]\n",
        toml_string(id.api_version),
        toml_string(id.kind),
        toml_string(id.namespace),
        toml_string(id.name),
        toml_string(&id.entry.role),
        toml_string(&id.entry.workload_secret_id),
        sans.join(", ")
    )
}

/// The init-data document: version, algorithm, and `[data]` with
/// `accord.toml` and `policy.rego`. Checked to parse back to exactly
/// these values.
pub fn document(id: &Identity, policy: &str) -> Result<String, String> {
    let keys = accord_keys(id);
    let doc = format!(
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"accord.toml\" = {}\n\"policy.rego\" = {}\n",
        toml_text(&keys),
        toml_text(policy)
    );
    let parsed: toml::Table =
        toml::from_str(&doc).map_err(|e| format!("generated init-data does not parse: {e}"))?;
    let data = parsed.get("data").and_then(toml::Value::as_table);
    let back = |k: &str| data.and_then(|d| d.get(k)).and_then(toml::Value::as_str);
    if back("policy.rego") != Some(policy) || back("accord.toml") != Some(keys.as_str()) {
        return Err("generated init-data does not parse back to its policy".into());
    }
    crate::initdata::check_toml(&doc).map_err(|e| e.to_string())?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> PolicyEntry {
        PolicyEntry {
            sans: vec!["web".into(), "we\"b".into()],
            workload_secret_id: "apps/v1/Deployment/default/web".into(),
            role: String::new(),
        }
    }

    #[test]
    fn round_trips_awkward_policies() {
        let e = entry();
        let id = Identity {
            api_version: "apps/v1",
            kind: "Deployment",
            namespace: "default",
            name: "web",
            entry: &e,
        };
        for policy in [
            "package agent_policy\n",
            "has ''' inside\n",
            "ends with a quote'",
            "control \u{1} char",
            "",
        ] {
            document(&id, policy).unwrap();
        }
    }

    #[test]
    fn identity_changes_the_document() {
        let e = entry();
        let a = Identity {
            api_version: "apps/v1",
            kind: "Deployment",
            namespace: "default",
            name: "web",
            entry: &e,
        };
        let b = Identity { name: "web2", ..a };
        assert_ne!(document(&a, "p").unwrap(), document(&b, "p").unwrap());
    }
}
