//! A multi-document YAML file as text chunks, so that `accord generate`
//! rewrites only the documents it changes: the others keep their bytes,
//! comments and all; a changed document keeps its leading comment lines
//! and is written back by `serde_yaml_ng` (mapping order kept).

use serde::Deserialize;
use serde_yaml_ng::Value;

/// One document of a file.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The separator line before it (`---…`, with its newline); empty for
    /// the first document.
    pub separator: String,
    /// The document's text.
    pub text: String,
    /// The parsed document (`Null` for an empty one).
    pub value: Value,
    /// Whether [`Chunk::value`] was changed and must be written back.
    pub changed: bool,
}

fn is_separator(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

/// Splits `text` into documents and parses each. Errors name the
/// document (0-based).
pub fn split(text: &str) -> Result<Vec<Chunk>, (usize, String)> {
    let mut pieces: Vec<(String, String)> = vec![(String::new(), String::new())];
    for line in text.split_inclusive('\n') {
        if is_separator(line) {
            pieces.push((line.to_string(), String::new()));
        } else if let Some(last) = pieces.last_mut() {
            last.1.push_str(line);
        }
    }
    let mut out = Vec::new();
    for (index, (separator, text)) in pieces.into_iter().enumerate() {
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            let de = serde_yaml_ng::Deserializer::from_str(&text);
            Value::deserialize(de).map_err(|e| (index, e.to_string()))?
        };
        out.push(Chunk {
            separator,
            text,
            value,
            changed: false,
        });
    }
    Ok(out)
}

/// The file's text again: unchanged documents byte for byte, changed ones
/// re-serialized after their leading comment lines.
pub fn join(chunks: &[Chunk]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for chunk in chunks {
        out.push_str(&chunk.separator);
        if chunk.changed {
            for line in chunk.text.split_inclusive('\n') {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    out.push_str(line);
                } else {
                    break;
                }
            }
            out.push_str(&serde_yaml_ng::to_string(&chunk.value)?);
        } else {
            out.push_str(&chunk.text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_documents_keep_their_bytes() {
        let text = "# head\na: 1 # c\n---\n# doc comment\nb: [1,  2]\n--- \nc: x\n";
        let mut chunks = split(text).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(join(&chunks).unwrap(), text);
        chunks[1].value = serde_yaml_ng::from_str("b: [3]").unwrap();
        chunks[1].changed = true;
        assert_eq!(
            join(&chunks).unwrap(),
            "# head\na: 1 # c\n---\n# doc comment\nb:\n- 3\n--- \nc: x\n"
        );
    }

    #[test]
    fn a_bad_document_is_named() {
        assert_eq!(split("a: 1\n---\n: : [\n").unwrap_err().0, 1);
    }
}
