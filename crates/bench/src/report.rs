//! Medians, and the table every section adds its rows to: each figure beside
//! its baseline from the same run, the ratio, and the target. The table is
//! printed as Markdown so it can go into docs/BENCHMARKS.md as it is.

use std::fmt::Write;
use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Prints each run's pair of figures on stderr, so the spread shows;
/// `what` names the unit and the pair.
pub fn show_runs(what: &str, ours: &[f64], baseline: &[f64]) {
    let pairs: Vec<String> = ours
        .iter()
        .zip(baseline)
        .map(|(o, b)| format!("{o:.0}/{b:.0}"))
        .collect();
    eprintln!("    runs ({what}): {}", pairs.join(" "));
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One line of the table.
pub struct Row {
    pub what: String,
    pub ours: String,
    pub baseline: String,
    /// ours / baseline, where that means something.
    pub ratio: Option<f64>,
    pub target: String,
    /// Whether the target is met; None where there is no target.
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    pub fn add(&mut self, row: Row) {
        eprintln!(
            "  {}: {} vs {}{}",
            row.what,
            row.ours,
            row.baseline,
            row.ratio
                .map(|r| format!(" (ratio {r:.2})"))
                .unwrap_or_default()
        );
        self.rows.push(row);
    }

    /// A line printed under the table (setup details, counts of errors).
    pub fn note(&mut self, note: String) {
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let header = ["measurement", "ours", "baseline", "ratio", "target", "met"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.what.clone(),
                    r.ours.clone(),
                    r.baseline.clone(),
                    r.ratio
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "-".into()),
                    r.target.clone(),
                    match r.met {
                        Some(true) => "yes".into(),
                        Some(false) => "NO".into(),
                        None => "-".into(),
                    },
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, row: &[String]| {
            out.push('|');
            for (c, w) in row.iter().zip(widths) {
                let _ = write!(out, " {c:<w$} |");
            }
            out.push('\n');
        };
        line(&mut out, &header.map(String::from));
        line(&mut out, &widths.map(|w| "-".repeat(w)));
        for row in &cells {
            line(&mut out, row);
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}
