//! The kubelet's `$(VAR_NAME)` expansion of a container's `command`,
//! `args` and env `value`s, as the policy must predict it: the kata-agent
//! sees the expanded strings.
//!
//! The rules (Kubernetes' `third_party/forked/golang/expansion`): `$(NAME)`
//! is replaced by NAME's value if the container defines NAME (in `env`
//! before this entry, or through `envFrom`; for command and args, anywhere
//! in its environment); an undefined reference stays as written; `$$` is a
//! literal `$`; a `$` before any other character, an unterminated `$(`
//! and a trailing `$` stay as written; the substituted value is not
//! expanded again. Only the pod spec's variables count: the kubelet does
//! not know the image's `Env`. (A `$` before a non-ASCII character, which
//! the kubelet turns into invalid UTF-8, stays as written here: such a
//! container cannot be created either way.)
//!
//! A value known only at run time (a generated pod name, the pod IP) is a
//! regex; a string that references one becomes a regex too, whose literal
//! parts are escaped and whose variable parts match exactly what the
//! variable may hold.

use super::env::EnvValue;
use super::pod::regex_escape;

/// Expands `raw` with the variables `lookup` knows; a literal when every
/// substituted value is a literal, else an unanchored regex.
pub fn expand<'v>(raw: &str, lookup: impl Fn(&str) -> Option<&'v EnvValue>) -> EnvValue {
    // Literal text and regex parts, in order.
    let mut parts: Vec<EnvValue> = Vec::new();
    let mut text = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.is_empty() {
            // A trailing `$`.
            text.push('$');
            rest = after;
        } else if let Some(after) = after.strip_prefix('$') {
            text.push('$');
            rest = after;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(EnvValue::Literal(v)) => text.push_str(v),
                        Some(EnvValue::Regex(r)) => {
                            parts.push(EnvValue::Literal(std::mem::take(&mut text)));
                            parts.push(EnvValue::Regex(r.clone()));
                        }
                        None => {
                            text.push_str("$(");
                            text.push_str(name);
                            text.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    // Unterminated: `$(` stays, scanning goes on after it.
                    text.push_str("$(");
                    rest = body;
                }
            }
        } else {
            // `$` and the character after it stay as written.
            let c = after.chars().next().unwrap_or('$');
            text.push('$');
            text.push(c);
            rest = &after[c.len_utf8()..];
        }
    }
    text.push_str(rest);
    if parts.is_empty() {
        return EnvValue::Literal(text);
    }
    parts.push(EnvValue::Literal(text));
    let mut regex = String::new();
    for p in parts {
        match p {
            EnvValue::Literal(t) => regex.push_str(&regex_escape(&t)),
            EnvValue::Regex(r) => {
                regex.push_str("(?:");
                regex.push_str(&r);
                regex.push(')');
            }
        }
    }
    EnvValue::Regex(regex)
}

/// Looks `name` up in an environment (last definition wins).
pub fn lookup<'v>(vars: &'v [(String, EnvValue)]) -> impl Fn(&str) -> Option<&'v EnvValue> {
    move |name| vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, EnvValue)> {
        vec![
            ("A".into(), EnvValue::Literal("x".into())),
            ("B".into(), EnvValue::Literal("$(A)".into())),
            ("EMPTY".into(), EnvValue::Literal(String::new())),
            ("POD".into(), EnvValue::Regex("web-[0-9]+".into())),
        ]
    }

    fn lit(raw: &str) -> String {
        let vars = vars();
        match expand(raw, lookup(&vars)) {
            EnvValue::Literal(s) => s,
            other => panic!("{raw:?} expanded to {other:?}"),
        }
    }

    fn re(raw: &str) -> String {
        let vars = vars();
        match expand(raw, lookup(&vars)) {
            EnvValue::Regex(s) => s,
            other => panic!("{raw:?} expanded to {other:?}"),
        }
    }

    #[test]
    fn references_and_escapes() {
        assert_eq!(lit("$(A)"), "x");
        assert_eq!(lit("a$(A)b"), "axb");
        assert_eq!(lit("$(A)$(A)"), "xx", "adjacent references");
        assert_eq!(lit("$(EMPTY)-"), "-");
        assert_eq!(lit("$$(A)"), "$(A)", "escaped");
        assert_eq!(lit("$$$(A)"), "$x", "an escape, then a reference");
        assert_eq!(lit("$$$$"), "$$");
        assert_eq!(lit("no refs"), "no refs");
        assert_eq!(lit(""), "");
    }

    #[test]
    fn undefined_and_malformed_references_stay() {
        assert_eq!(lit("$(UNDEFINED)"), "$(UNDEFINED)");
        assert_eq!(lit("$()"), "$()");
        assert_eq!(lit("$(A"), "$(A", "unterminated");
        assert_eq!(lit("$($(A)"), "$($(A)", "the name is `$(A`, undefined");
        assert_eq!(lit("$(A)$("), "x$(");
        assert_eq!(lit("$"), "$", "trailing");
        assert_eq!(lit("a$b$(A)"), "a$bx", "`$` before another character");
        assert_eq!(lit("$é$(A)"), "$éx");
        assert_eq!(lit("$ (A)"), "$ (A)");
    }

    #[test]
    fn no_recursion_into_the_substituted_value() {
        assert_eq!(lit("$(B)"), "$(A)");
    }

    #[test]
    fn run_time_values_become_an_escaped_regex() {
        assert_eq!(re("$(POD)"), "(?:web-[0-9]+)");
        assert_eq!(
            re("--name=$(POD).svc:$(A)$$(POD)"),
            "\\-\\-name=(?:web-[0-9]+)\\.svc:x\\$\\(POD\\)"
        );
        assert_eq!(re("$(POD)$(POD)"), "(?:web-[0-9]+)(?:web-[0-9]+)");
    }

    #[test]
    fn the_last_definition_wins() {
        let vars = vec![
            ("A".to_string(), EnvValue::Literal("1".into())),
            ("A".to_string(), EnvValue::Literal("2".into())),
        ];
        assert_eq!(expand("$(A)", lookup(&vars)), EnvValue::Literal("2".into()));
    }
}
