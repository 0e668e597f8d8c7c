//! CSV files for people to open in a spreadsheet (orders, members), with the `csv`
//! crate: a UTF-8 byte order mark so Excel reads Chinese text, every field quoted
//! (commas, quotes and line breaks inside fields kept), and no field that a spreadsheet
//! would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a leading `'`).

use crate::error::{Error, Result};

/// A field a spreadsheet will not evaluate.
pub fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() }
}

/// A CSV file being written, header first.
pub struct Sheet {
    w: csv::Writer<Vec<u8>>,
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("writing CSV: {e}"))
}

impl Sheet {
    pub fn new(header: &[&str]) -> Result<Self> {
        let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
        w.write_record(header).map_err(failed)?;
        Ok(Self { w })
    }

    /// One line; text fields should pass through `inert` (numbers and times need not).
    pub fn row<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(&mut self, fields: I) -> Result<()> {
        self.w.write_record(fields).map_err(failed)
    }

    /// The file's text, starting with the byte order mark.
    pub fn finish(self) -> Result<String> {
        let bytes = self.w.into_inner().map_err(failed)?;
        let text = String::from_utf8(bytes).map_err(failed)?;
        Ok(format!("\u{feff}{text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_inert_and_the_file_starts_with_a_bom() {
        let mut s = Sheet::new(&["a", "b"]).unwrap();
        s.row([inert("=1+1"), inert("茶, \"豆\"\n")]).unwrap();
        let text = s.finish().unwrap();
        assert_eq!(text, "\u{feff}\"a\",\"b\"\n\"'=1+1\",\"茶, \"\"豆\"\"\n\"\n");
    }
}
