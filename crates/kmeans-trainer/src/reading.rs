//! Reading the training data: a CSV file of numeric rows, all of one width.
//!
//! The format, as `--help` and `docs/trainer.md` state it:
//! - cells are separated by commas; white space around a cell is ignored;
//!   blank lines are skipped;
//! - a cell is a decimal number as Rust's `f64` parser reads it (`3`, `-0.5`,
//!   `1e-3`); `NaN` and infinities are refused;
//! - the first row is a header, and skipped, when **none** of its cells is a
//!   number (`x,y`); a first row with some numbers is data, and its other
//!   cells are errors (a header with a numeric name would be ambiguous);
//! - every row, header included, has the width of the first row.

use std::path::Path;

/// Numeric rows read from a CSV file, all of the same width (at least one
/// row, at least one column).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The file as the user named it, for messages.
    pub source: String,
    /// The header's cells, when the first row was one.
    pub header: Option<Vec<String>>,
    /// The data rows, in file order.
    pub rows: Vec<Vec<f64>>,
}

impl Dataset {
    /// The number of values in each row.
    pub fn width(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }
}

/// Why a file is not usable training data. Each message names the file, and
/// the line and column (both 1-based) where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{source_name}: cannot read: {cause}")]
    Unreadable {
        /// The file.
        source_name: String,
        /// What the operating system said.
        cause: String,
    },
    /// A line is not UTF-8 text.
    #[error("{source_name}:{line}: not valid UTF-8 text")]
    NotUtf8 {
        /// The file.
        source_name: String,
        /// The line.
        line: u64,
    },
    /// A cell holds nothing.
    #[error("{source_name}:{line}:{column}: empty cell, expected a number")]
    EmptyCell {
        /// The file.
        source_name: String,
        /// The line.
        line: u64,
        /// The column.
        column: usize,
    },
    /// A cell holds something other than a number.
    #[error("{source_name}:{line}:{column}: {text:?} is not a number")]
    NotANumber {
        /// The file.
        source_name: String,
        /// The line.
        line: u64,
        /// The column.
        column: usize,
        /// The cell, trimmed.
        text: String,
    },
    /// A cell holds NaN or an infinity.
    #[error("{source_name}:{line}:{column}: {text:?} is not a finite number")]
    NotFinite {
        /// The file.
        source_name: String,
        /// The line.
        line: u64,
        /// The column.
        column: usize,
        /// The cell, trimmed.
        text: String,
    },
    /// A row whose width differs from the first row's.
    #[error(
        "{source_name}:{line}: line {line} has {actual} columns, expected {expected} like line {first_line}"
    )]
    Ragged {
        /// The file.
        source_name: String,
        /// The line.
        line: u64,
        /// Its number of cells.
        actual: usize,
        /// The first row's number of cells.
        expected: usize,
        /// Where the first row is.
        first_line: u64,
    },
    /// Nothing to train on: an empty file, or a header alone.
    #[error("{source_name}: no data rows")]
    NoRows {
        /// The file.
        source_name: String,
    },
}

/// Reads the CSV file at `path`.
pub fn read_file(path: &Path) -> Result<Dataset, ReadError> {
    let source_name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => read(&source_name, &bytes),
        Err(error) => Err(ReadError::Unreadable {
            source_name,
            cause: error.to_string(),
        }),
    }
}

/// Reads CSV text; `source_name` names it in messages.
pub fn read(source_name: &str, input: &[u8]) -> Result<Dataset, ReadError> {
    let mut lines = LineCounter::new(input);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Rows of the wrong width are reported by us, with the line and the
        // expected width, rather than by the csv crate.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let name = || source_name.to_owned();
    let mut header = None;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    // The first record's width and line: every later row must match it.
    let mut first: Option<(usize, u64)> = None;
    for record in reader.records() {
        let record = record.map_err(|error| csv_error(source_name, &mut lines, error))?;
        let line = lines.line_at(record.position());
        let Some((expected, first_line)) = first else {
            first = Some((record.len(), line));
            if record.iter().all(|cell| cell.parse::<f64>().is_err()) {
                header = Some(record.iter().map(str::to_owned).collect());
            } else {
                rows.push(parse_row(source_name, line, &record)?);
            }
            continue;
        };
        if record.len() != expected {
            return Err(ReadError::Ragged {
                source_name: name(),
                line,
                actual: record.len(),
                expected,
                first_line,
            });
        }
        rows.push(parse_row(source_name, line, &record)?);
    }
    if rows.is_empty() {
        return Err(ReadError::NoRows {
            source_name: name(),
        });
    }
    Ok(Dataset {
        source: name(),
        header,
        rows,
    })
}

fn parse_row(
    source_name: &str,
    line: u64,
    record: &csv::StringRecord,
) -> Result<Vec<f64>, ReadError> {
    record
        .iter()
        .enumerate()
        .map(|(index, text)| parse_cell(source_name, line, index + 1, text))
        .collect()
}

fn parse_cell(source_name: &str, line: u64, column: usize, text: &str) -> Result<f64, ReadError> {
    let source_name = source_name.to_owned();
    if text.is_empty() {
        return Err(ReadError::EmptyCell {
            source_name,
            line,
            column,
        });
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(ReadError::NotFinite {
            source_name,
            line,
            column,
            text: text.to_owned(),
        }),
        Err(_) => Err(ReadError::NotANumber {
            source_name,
            line,
            column,
            text: text.to_owned(),
        }),
    }
}

/// Line numbers from byte offsets: the csv crate's own line count leaves out
/// the blank lines it skips, and a message must name the line an editor shows.
struct LineCounter<'a> {
    input: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line where the record at `position` starts; positions come
    /// in file order.
    fn line_at(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(byte) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
            return self.line;
        };
        let mut byte = byte.clamp(self.offset, self.input.len());
        // A record's position is where the reader began looking for it, so
        // before the blank lines it skipped.
        while matches!(self.input.get(byte), Some(b'\n' | b'\r')) {
            byte += 1;
        }
        let newlines = self.input[self.offset..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.offset = byte;
        self.line
    }
}

fn csv_error(source_name: &str, lines: &mut LineCounter<'_>, error: csv::Error) -> ReadError {
    let source_name = source_name.to_owned();
    match error.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => ReadError::NotUtf8 {
            source_name,
            line: lines.line_at(pos.as_ref()),
        },
        _ => ReadError::Unreadable {
            source_name,
            cause: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dataset, ReadError> {
        read("data.csv", text.as_bytes())
    }

    fn message(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn reads_numeric_rows_in_file_order() {
        let data = parse("1,2\n3.5,-4\n1e3, +0.25 \n").expect("valid");
        assert_eq!(
            data.rows,
            vec![vec![1.0, 2.0], vec![3.5, -4.0], vec![1000.0, 0.25]]
        );
        assert_eq!((data.header.as_deref(), data.width()), (None, 2));
    }

    #[test]
    fn a_first_row_without_any_number_is_a_header() {
        let data = parse("x, y\n1,2\n").expect("valid");
        assert_eq!(data.header, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(data.rows, vec![vec![1.0, 2.0]]);
    }

    #[test]
    fn a_first_row_with_some_numbers_is_data_and_its_words_are_errors() {
        assert_eq!(
            message("x,2\n1,2\n"),
            r#"data.csv:1:1: "x" is not a number"#
        );
    }

    #[test]
    fn blank_lines_are_skipped_and_line_numbers_stay_true() {
        let data = parse("\n1\n\n2\n").expect("valid");
        assert_eq!(data.rows, vec![vec![1.0], vec![2.0]]);
        assert_eq!(
            message("1,2\n\n3,abc\n"),
            r#"data.csv:3:2: "abc" is not a number"#
        );
    }

    #[test]
    fn each_bad_cell_is_named_by_line_and_column() {
        assert_eq!(
            message("a,b\n1,2\n3,abc\n"),
            r#"data.csv:3:2: "abc" is not a number"#
        );
        assert_eq!(
            message("1,2\n3,\n"),
            "data.csv:2:2: empty cell, expected a number"
        );
        assert_eq!(
            message("1,2\nNaN,1\n"),
            r#"data.csv:2:1: "NaN" is not a finite number"#
        );
        assert_eq!(
            message("1,inf\n"),
            r#"data.csv:1:2: "inf" is not a finite number"#
        );
        assert_eq!(
            message("1,2\n-infinity,1\n"),
            r#"data.csv:2:1: "-infinity" is not a finite number"#
        );
    }

    #[test]
    fn rows_must_all_have_the_first_rows_width() {
        assert_eq!(
            message("x,y\n1,2\n3,4,5\n"),
            "data.csv:3: line 3 has 3 columns, expected 2 like line 1"
        );
        assert_eq!(
            message("1,2\n3\n"),
            "data.csv:2: line 2 has 1 columns, expected 2 like line 1"
        );
    }

    #[test]
    fn no_data_rows_is_an_error() {
        assert_eq!(message(""), "data.csv: no data rows");
        assert_eq!(message("\n\n"), "data.csv: no data rows");
        assert_eq!(message("x,y\n"), "data.csv: no data rows");
    }

    #[test]
    fn invalid_utf8_is_named_by_line() {
        let error = read("data.csv", b"1,2\n3,\xff\n").expect_err("refused");
        assert_eq!(error.to_string(), "data.csv:2: not valid UTF-8 text");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = read_file(Path::new("/nonexistent/data.csv")).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/data.csv: cannot read: "),
            "{error}"
        );
    }
}
