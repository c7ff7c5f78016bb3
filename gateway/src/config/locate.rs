//! Finds the line of a dotted key path in YAML text, for error messages. Understands block
//! mappings by indentation and a flow mapping on one line (`limits: {memory: 64MiB}`); that is
//! all a config needs.

/// Whether `text` holds no YAML content (only blank lines and comments).
pub(super) fn is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
}

/// The 1-based line where the deepest found prefix of `path` is written.
pub(super) fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (depth matched, line)
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        let content = content.strip_prefix("- ").unwrap_or(content);
        let Some((key, rest)) = content.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = matched_depth(&stack, path);
        if depth == stack.len() && depth > best.map_or(0, |b| b.0) {
            best = Some((depth, index + 1));
        }
        // A flow mapping on this line: `limits: {memory: 1GiB}` holds the next key.
        if depth == stack.len() && depth < path.len() {
            let next = path[depth];
            let inline = rest.trim_start();
            if inline.starts_with('{') && contains_key(inline, next) {
                best = Some((depth + 1, index + 1));
            }
        }
        if best.is_some_and(|b| b.0 == path.len()) {
            break;
        }
    }
    best.map(|(_, line)| line)
}

/// The dotted key path of the key written at 1-based `line` (and, inside a one-line flow
/// mapping, of the key before 1-based `column`).
pub(super) fn path_at(text: &str, line: usize, column: usize) -> Option<String> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (index, raw) in text.lines().enumerate().take(line) {
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - content.len();
        let content = content.strip_prefix("- ").unwrap_or(content);
        let Some((key, _)) = content.split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.trim().trim_matches(|c| c == '"' || c == '\'')));
        if index + 1 == line {
            let mut path: Vec<&str> = stack.iter().map(|(_, k)| *k).collect();
            let upto = &raw[..column.saturating_sub(1).min(raw.len())];
            if let Some(open) = upto.find('{') {
                let inner = &upto[open + 1..];
                if let Some(key) = inner
                    .rsplit(',')
                    .next()
                    .and_then(|entry| entry.split_once(':'))
                    .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
                {
                    path.push(key);
                }
            }
            return Some(path.join("."));
        }
    }
    None
}

fn matched_depth(stack: &[(usize, &str)], path: &[&str]) -> usize {
    stack
        .iter()
        .zip(path)
        .take_while(|((_, key), want)| key == *want)
        .count()
}

fn contains_key(flow: &str, key: &str) -> bool {
    flow.match_indices(key).any(|(i, _)| {
        let before = flow[..i].trim_end().chars().last();
        let after = flow[i + key.len()..].trim_start().chars().next();
        matches!(before, Some('{' | ',' | '"' | '\'')) && matches!(after, Some(':' | '"' | '\''))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
listen:
  http: 127.0.0.1:8080
tenants:
  # a comment
  demo:
    hosts: [localhost]
    limits: {memory: 64MiB, cpu_time: 50ms}
    functions:
      hello:
        wasm: hello.wasm
        routes: [/hello]
";

    #[test]
    fn finds_block_keys() {
        assert_eq!(line_of(YAML, &["listen", "http"]), Some(2));
        assert_eq!(line_of(YAML, &["tenants", "demo"]), Some(5));
        assert_eq!(
            line_of(YAML, &["tenants", "demo", "functions", "hello", "routes"]),
            Some(11)
        );
    }

    #[test]
    fn finds_flow_keys_and_falls_back_to_the_deepest_parent() {
        assert_eq!(
            line_of(YAML, &["tenants", "demo", "limits", "cpu_time"]),
            Some(7)
        );
        assert_eq!(line_of(YAML, &["tenants", "demo", "nothing"]), Some(5));
        assert_eq!(line_of(YAML, &["nowhere"]), None);
    }

    #[test]
    fn path_at_a_line_and_column() {
        assert_eq!(path_at(YAML, 2, 9).as_deref(), Some("listen.http"));
        assert_eq!(
            path_at(YAML, 11, 17).as_deref(),
            Some("tenants.demo.functions.hello.routes")
        );
        assert_eq!(
            path_at(YAML, 7, 38).as_deref(),
            Some("tenants.demo.limits.cpu_time")
        );
        assert_eq!(
            path_at(YAML, 7, 23).as_deref(),
            Some("tenants.demo.limits.memory")
        );
    }

    #[test]
    fn blank_text() {
        assert!(is_blank("# only\n\n---\n"));
        assert!(!is_blank("a: 1"));
    }
}
