//! Output shared by the core-mode commands: the `-o` formats, aligned tables, `Key: value`
//! summaries, JSON/YAML printing and terminal prompts.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

/// `-o` of the list commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table.
    #[default]
    Wide,
    Json,
    Yaml,
    /// Names only, one per line.
    Name,
}

/// `-o` of the commands that show one object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    /// A summary and tables.
    #[default]
    Wide,
    Json,
    Yaml,
}

/// Prints a value as indented JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a value as YAML.
pub fn print_yaml<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    print!("{}", serde_yaml::to_string(value)?);
    Ok(())
}

/// Objects as a YAML stream, each document introduced by `---`.
pub fn yaml_stream(objects: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(object)?);
    }
    Ok(out)
}

/// A table in the style of kubectl and argocd: columns separated by at least two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether there are rows besides the header.
    pub fn is_empty(&self) -> bool {
        self.rows.len() == 1
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                line.push_str(cell);
                if c + 1 < columns {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Key:   value` lines with the values aligned.
pub fn summary(fields: &[(&str, String)]) -> String {
    // The longest key, its colon and two spaces.
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 3;
    fields
        .iter()
        .map(|(key, value)| {
            let label = format!("{key}:");
            format!("{label:width$}{value}").trim_end().to_string() + "\n"
        })
        .collect()
}

/// A value, or `<none>` when it is empty.
pub fn or_none(value: &str) -> String {
    if value.is_empty() {
        "<none>".to_string()
    } else {
        value.to_string()
    }
}

/// `--color` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stdout is a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

impl Color {
    pub fn enabled(self) -> bool {
        match self {
            Self::Auto => std::io::stdout().is_terminal(),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// A unified diff with removed lines red and added lines green.
pub fn colorize_diff(text: &str) -> String {
    const RED: &str = "\x1b[31m";
    const GREEN: &str = "\x1b[32m";
    const CYAN: &str = "\x1b[36m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let color = if line.starts_with("---") || line.starts_with("+++") {
            None
        } else if line.starts_with('-') {
            Some(RED)
        } else if line.starts_with('+') {
            Some(GREEN)
        } else if line.starts_with("@@") {
            Some(CYAN)
        } else {
            None
        };
        match color {
            Some(color) => {
                let (body, newline) = match line.strip_suffix('\n') {
                    Some(body) => (body, "\n"),
                    None => (line, ""),
                };
                out.push_str(&format!("{color}{body}{RESET}{newline}"));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Asks a yes/no question on the terminal; without a terminal the answer is yes, so scripts
/// and pipelines are not blocked.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/n] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut table = Table::new(&["NAME", "STATUS", "MESSAGE"]);
        assert!(table.is_empty());
        table.row(vec!["guestbook".into(), "Synced".into(), String::new()]);
        table.row(vec!["a".into(), "OutOfSync".into(), "drift".into()]);
        assert_eq!(
            table.render(),
            "NAME       STATUS     MESSAGE\n\
             guestbook  Synced\n\
             a          OutOfSync  drift\n"
        );
    }

    #[test]
    fn summaries_align_values() {
        let text = summary(&[("Name", "web".into()), ("Sync Policy", "Manual".into())]);
        assert_eq!(text, "Name:         web\nSync Policy:  Manual\n");
    }

    #[test]
    fn diffs_are_colored_line_by_line() {
        let text = "--- live\n+++ desired\n@@ -1 +1 @@\n-a: 1\n+a: 2\n b: 3\n";
        let colored = colorize_diff(text);
        assert!(colored.starts_with("--- live\n+++ desired\n"));
        assert!(colored.contains("\x1b[31m-a: 1\x1b[0m\n"));
        assert!(colored.contains("\x1b[32m+a: 2\x1b[0m\n"));
        assert!(colored.ends_with(" b: 3\n"));
    }

    #[test]
    fn yaml_streams_separate_documents() {
        let objects = [serde_json::json!({"a": 1}), serde_json::json!({"b": 2})];
        assert_eq!(yaml_stream(&objects).unwrap(), "---\na: 1\n---\nb: 2\n");
    }
}
