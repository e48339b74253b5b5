//! Human-readable output for the admin commands: a table of rows under a header, and a record
//! (one object as `name  value` lines). Commands print these by default and raw JSON with
//! `--json`; cells come from JSON values with [`cell`].

use serde_json::Value;

/// Rows under a header, each column as wide as its widest cell (counted in characters).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: columns separated by two spaces, no trailing spaces, one line each.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One object as `name  value` lines, names aligned; empty values are left out.
pub fn record(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    out
}

/// A JSON value as a cell: `-` for null or absent, strings without quotes, arrays joined by
/// `, `, objects as compact JSON. Control characters become spaces (a cell is one line).
pub fn cell(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| cell(Some(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let mut t = Table::new(&["ID", "STATUS", "BY"]);
        t.row(vec!["a".into(), "active".into(), "-".into()]);
        t.row(vec!["bbbb".into(), "exhausted".into()]);
        assert_eq!(
            t.render(),
            "ID    STATUS     BY\na     active     -\nbbbb  exhausted\n"
        );
        assert!(!t.is_empty());
    }

    #[test]
    fn cells_are_one_line_of_plain_text() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(Some(&json!("a\nb"))), "a b");
        assert_eq!(cell(Some(&json!(["view", "download"]))), "view, download");
        assert_eq!(cell(Some(&json!(3))), "3");
        assert_eq!(
            record(&[
                ("id", "x".into()),
                ("url", String::new()),
                ("type", "link".into())
            ]),
            "id    x\ntype  link\n"
        );
    }
}
