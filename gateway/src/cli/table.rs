//! Aligned text columns for command output.

/// A table: a header row and rows of cells, printed with each column as wide as its widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, ending with a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Seconds since the Unix epoch as an HTTP date (`Mon, 07 Dec 2026 11:50:52 GMT`); `-` for none.
pub fn time(seconds: Option<u64>) -> String {
    seconds.map_or_else(
        || "-".to_owned(),
        |s| httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_times_read_as_dates() {
        let mut table = Table::new(&["id", "created"]);
        table.row(vec!["a1".into(), time(Some(0))]);
        table.row(vec!["legacy-0123".into(), time(None)]);
        assert_eq!(
            table.render(),
            "ID           CREATED\na1           Thu, 01 Jan 1970 00:00:00 GMT\nlegacy-0123  -\n"
        );
    }
}
