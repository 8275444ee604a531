//! The README and the pages of `docs/` link to files that exist and to headings those files have. Every relative
//! link is followed: `[text](target)`, `[text](target#anchor)`, `[text](#anchor)`, images `![alt](path)` and
//! reference definitions `[label]: target`, outside fenced code blocks, inline code and HTML comments; `http:`,
//! `https:` and `mailto:` links are left alone. An anchor must be the id GitHub gives a heading of the target:
//! the heading's text in lower case, without the characters that are not letters, digits, spaces, hyphens or
//! underscores, spaces made hyphens, and `-1`, `-2` ... after an id already taken.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

fn repository_root() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

#[test]
fn every_relative_link_of_the_readme_and_docs_leads_somewhere() {
    let root = repository_root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && is_markdown(path))
        .collect();
    docs.sort();
    assert!(docs.len() > 1, "no pages in docs/: {docs:?}");
    let pages: Vec<PathBuf> = std::iter::once(root.join("README.md")).chain(docs).collect();
    let broken = broken_links(&root, &pages);
    assert!(broken.is_empty(), "{} broken links:\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn the_link_checker_reports_each_broken_link_with_its_line_and_why() {
    let root = crate::support::temp_dir("doc-links");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/pic.png"), "").unwrap();
    let page = "# Title

## Same
## `Same`

See [b](docs/b.md), [a part of b](docs/b.md#part-two-of-b), [this](#same-1), [this](#title), [code `in` text](#same).
Broken: [gone](docs/missing.md), [no such part](docs/b.md#nowhere), [one too many](#same-2), [fenced](#not-a-heading).
![fine](docs/pic.png) ![missing image](docs/nope.png) [![linked image](docs/pic.png)](docs/absent.md)
[outside](../elsewhere.md) [web](https://example.com/x.md) [mail](mailto:a@example.com) [rooted](/docs/b.md)
`[in code](nothing.md)`, ``[also `in` code](nothing.md)`` and \\[escaped](nothing.md)
<!-- [in a comment](nothing.md) -->

```md
[in a fence](nothing.md)
# not a heading
```

[ref]: docs/absent-too.md
[a link over
two lines](docs/missing-too.md) [titled](docs/b.md \"B\") [spaced](<docs/b.md>)
";
    std::fs::write(root.join("a.md"), page).unwrap();
    std::fs::write(
        root.join("docs/b.md"),
        "# B\n\n## Part two of B\n\n[back](../a.md#title) [back](../a.md#part-two)\n",
    )
    .unwrap();

    let broken = broken_links(&root, &[root.join("a.md"), root.join("docs/b.md")]);
    let expected = [
        "a.md:7: docs/missing.md (no such file)",
        "a.md:7: docs/b.md#nowhere (no heading \"nowhere\" in docs/b.md)",
        "a.md:7: #same-2 (no heading \"same-2\" in a.md)",
        "a.md:7: #not-a-heading (no heading \"not-a-heading\" in a.md)",
        "a.md:8: docs/nope.png (no such file)",
        "a.md:8: docs/absent.md (no such file)",
        "a.md:9: ../elsewhere.md (outside the repository)",
        "a.md:9: /docs/b.md (an absolute path: links are relative to their page)",
        "a.md:18: docs/absent-too.md (no such file)",
        "a.md:20: docs/missing-too.md (no such file)",
        "docs/b.md:5: ../a.md#part-two (no heading \"part-two\" in a.md)",
    ];
    assert_eq!(broken, expected, "\n{}", broken.join("\n"));
    assert_eq!(slug("Same `twice`"), "same-twice");
    assert_eq!(slug("§7 Sending to Service Bus"), "7-sending-to-service-bus");
    assert_eq!(slug("With Docker: the real host, and Ünïcode_names"), "with-docker-the-real-host-and-ünïcode_names");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Every broken link of `pages` (files under `root`), as `page:line: target (why)`, in the order of the pages.
fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let root = normalize(root);
    let mut ids = HashMap::new();
    let mut broken = Vec::new();
    for page in pages {
        let page = normalize(page);
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        for link in links(&text) {
            if let Some(why) = follow(&root, &page, &link.target, &mut ids) {
                broken.push(format!("{}:{}: {} ({why})", shown(&root, &page), link.line, link.target));
            }
        }
    }
    broken
}

/// Why `target`, linked from `page`, leads nowhere; `None` when it leads somewhere (or off the repository, to the
/// web or to mail). `ids` keeps the heading ids of the pages read so far.
fn follow(root: &Path, page: &Path, target: &str, ids: &mut HashMap<PathBuf, Vec<String>>) -> Option<String> {
    let scheme = target.to_ascii_lowercase();
    if ["http:", "https:", "mailto:"].iter().any(|s| scheme.starts_with(s)) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = percent_decoded(path.split_once('?').map_or(path, |(path, _query)| path));
    let file = if path.is_empty() {
        page.to_path_buf()
    } else if path.starts_with('/') {
        return Some("an absolute path: links are relative to their page".to_owned());
    } else {
        let file = normalize(&page.parent().unwrap_or(root).join(&path));
        if !file.starts_with(root) {
            return Some("outside the repository".to_owned());
        }
        if !file.exists() {
            return Some("no such file".to_owned());
        }
        file
    };
    let anchor = percent_decoded(anchor?);
    // Anchors into other files (`#L10` of source code) are GitHub's to resolve.
    if anchor.is_empty() || !file.is_file() || !is_markdown(&file) {
        return None;
    }
    let ids = ids.entry(file.clone()).or_insert_with(|| {
        heading_ids(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
    });
    (!ids.contains(&anchor)).then(|| format!("no heading \"{anchor}\" in {}", shown(root, &file)))
}

/// A link as written: the line its target is on (from 1) and the target.
#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
}

/// The links of a Markdown text: inline links and images, and reference definitions, outside fenced code blocks,
/// inline code and HTML comments.
fn links(text: &str) -> Vec<Link> {
    let chars = blanked(&without_fences(text).join("\n"));
    let mut line_of = Vec::with_capacity(chars.len());
    let mut line = 1;
    for &c in &chars {
        line_of.push(line);
        if c == '\n' {
            line += 1;
        }
    }
    let mut links = Vec::new();
    // Reference definitions: `[label]: target` opening a line (at most three spaces in), not a footnote's `[^1]:`.
    let mut start = 0;
    for (i, &c) in chars.iter().chain(std::iter::once(&'\n')).enumerate() {
        if c != '\n' {
            continue;
        }
        let text: String = chars[start..i].iter().collect();
        let trimmed = text.trim_start_matches(' ');
        if text.len() - trimmed.len() <= 3 && trimmed.starts_with('[') && !trimmed.starts_with("[^") {
            if let Some((label, rest)) = trimmed[1..].split_once("]:") {
                let target = rest.split_whitespace().next().unwrap_or("");
                let target = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(target);
                if !label.trim().is_empty() && !label.contains(['[', ']']) && !target.is_empty() {
                    links.push(Link { line: line_of.get(start).copied().unwrap_or(line), target: target.to_owned() });
                }
            }
        }
        start = i + 1;
    }
    // Inline links and images: `[text](target "title")`, where `[text]` closes a bracket opened in its paragraph.
    for i in 0..chars.len().saturating_sub(1) {
        if chars[i] == ']' && chars[i + 1] == '(' && opening_bracket(&chars, i).is_some() {
            if let Some(target) = destination(&chars, i + 2) {
                links.push(Link { line: line_of[i], target });
            }
        }
    }
    links.sort_by_key(|link| link.line);
    links
}

/// The `[` that the `]` at `close` closes, looking back no further than the paragraph (a blank line ends it).
fn opening_bracket(chars: &[char], close: usize) -> Option<usize> {
    let mut depth = 0;
    let mut line_has_text = true;
    for k in (0..close).rev() {
        match chars[k] {
            '\n' if !line_has_text => return None,
            '\n' => line_has_text = false,
            c if c.is_whitespace() => {}
            '[' if depth == 0 => return Some(k),
            '[' => {
                depth -= 1;
                line_has_text = true;
            }
            ']' => {
                depth += 1;
                line_has_text = true;
            }
            _ => line_has_text = true,
        }
    }
    None
}

/// The target of a link whose `(` is just before `from`: `<target>` or a target without spaces (balanced
/// parentheses and backslash escapes allowed), then an optional title, then `)`. `None` when that is not what
/// follows, or when the target is empty.
fn destination(chars: &[char], from: usize) -> Option<String> {
    let skip_space = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let mut j = skip_space(from);
    let mut target = String::new();
    if chars.get(j) == Some(&'<') {
        j += 1;
        while *chars.get(j)? != '>' {
            if chars[j] == '\n' {
                return None;
            }
            target.push(chars[j]);
            j += 1;
        }
        j += 1;
    } else {
        let mut depth = 0;
        while let Some(&c) = chars.get(j) {
            match c {
                c if c.is_whitespace() || c.is_control() => break,
                '\\' if chars.get(j + 1).is_some_and(|c| c.is_ascii_punctuation()) => {
                    target.push(chars[j + 1]);
                    j += 2;
                    continue;
                }
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                _ => {}
            }
            target.push(c);
            j += 1;
        }
    }
    j = skip_space(j);
    if let Some(&quote) = chars.get(j).filter(|&&c| c == '"' || c == '\'' || c == '(') {
        let end = if quote == '(' { ')' } else { quote };
        j += 1 + chars.get(j + 1..)?.iter().position(|&c| c == end)? + 1;
        j = skip_space(j);
    }
    (chars.get(j) == Some(&')') && !target.is_empty()).then_some(target)
}

/// The lines of `text`, those of fenced code blocks (their fences too) made empty.
fn without_fences(text: &str) -> Vec<&str> {
    let mut open: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let fence = trimmed.chars().next().filter(|&c| c == '`' || c == '~').and_then(|c| {
            let n = trimmed.chars().take_while(|&x| x == c).count();
            (n >= 3).then_some((c, n))
        });
        match (open, fence) {
            (None, Some((c, n))) if c == '~' || !trimmed[n..].contains('`') => {
                open = Some((c, n));
                lines.push("");
            }
            (None, _) => lines.push(line),
            (Some((c, n)), Some((d, m))) if d == c && m >= n && trimmed[m..].trim().is_empty() => {
                open = None;
                lines.push("");
            }
            (Some(_), _) => lines.push(""),
        }
    }
    lines
}

/// `text` with its inline code spans, HTML comments and backslash-escaped brackets, parentheses and backticks
/// blanked out (line breaks kept), so that nothing in them is taken for a link.
fn blanked(text: &str) -> Vec<char> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let run = |at: usize| chars[at..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1).is_some_and(|c| "[]()`<>!".contains(*c)) {
            blank(&mut out, i, i + 2);
            i += 2;
        } else if chars[i..].starts_with(&['<', '!', '-', '-']) {
            let end =
                (i + 4..chars.len()).find(|&k| chars[k..].starts_with(&['-', '-', '>'])).map_or(chars.len(), |k| k + 3);
            blank(&mut out, i, end);
            i = end;
        } else if chars[i] == '`' {
            // A code span: a run of n backticks to the next run of exactly n, within the paragraph.
            let n = run(i);
            let mut k = i + n;
            let mut close = None;
            while k < chars.len() {
                if chars[k] == '`' {
                    let m = run(k);
                    if m == n {
                        close = Some(k);
                        break;
                    }
                    k += m;
                } else if chars[k] == '\n'
                    && chars[k + 1..].iter().take_while(|&&c| c != '\n').all(|c| c.is_whitespace())
                {
                    break;
                } else {
                    k += 1;
                }
            }
            match close {
                Some(k) => {
                    blank(&mut out, i, k + n);
                    i = k + n;
                }
                None => i += n,
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The ids GitHub gives the headings of a Markdown text, in order (ATX headings only: `## Text`; this project
/// writes no underlined ones).
fn heading_ids(text: &str) -> Vec<String> {
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    for line in without_fences(text) {
        let Some(heading) = heading_text(line) else { continue };
        let slug = slug(&heading);
        let times = taken.entry(slug.clone()).or_insert(0);
        ids.push(if *times == 0 { slug } else { format!("{slug}-{times}") });
        *times += 1;
    }
    ids
}

/// The text of an ATX heading (`## Text`, at most three spaces in, an optional closing run of `#`), its links'
/// destinations left out; `None` when `line` is not a heading.
fn heading_text(line: &str) -> Option<String> {
    let rest = line.trim_start_matches(' ');
    if line.len() - rest.len() > 3 {
        return None;
    }
    let level = rest.chars().take_while(|&c| c == '#').count();
    let rest = &rest[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let mut text = rest.trim();
    let unclosed = text.trim_end_matches('#');
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        text = unclosed.trim_end();
    }
    let mut shown = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        shown.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        rest = after.find(')').map_or(after, |end| &after[end + 1..]);
    }
    shown.push_str(rest);
    Some(shown)
}

/// GitHub's id of a heading: lower case; letters, digits, hyphens and underscores kept, each space a hyphen, the
/// rest dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex.filter(|_| bytes[i] == b'%').and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// `path` without `.` and `..` components (read, not resolved: a link is followed as GitHub follows it).
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

fn is_markdown(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"))
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}
