//! Plain-text tables: padded columns, and narrowing a table that is too wide for the terminal
//! (columns dropped, long cells elided in the middle). The download summary and the bench
//! report both lay out their tables here.

use console::measure_text_width;

use crate::progress::elide_middle;

/// How a table column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// How a table too wide for the terminal is narrowed, step by step, until it fits: columns
/// dropped, or the first column (file names) and the last (errors) elided in the middle down
/// to a number of columns.
pub(crate) enum Narrow {
    Drop(&'static str),
    Elide(usize),
}

/// Lays out a table in at most `width` columns, narrowing it step by step as `narrowing` says.
/// Without a width, the table is as wide as its cells.
pub(crate) fn fit_table(
    header: &[&str],
    mut rows: Vec<Vec<String>>,
    align: &[Align],
    width: Option<usize>,
    narrowing: &[Narrow],
) -> String {
    let (mut header, mut align) = (header.to_vec(), align.to_vec());
    if let Some(width) = width {
        // Never the last column: some terminals wrap when it is written.
        let width = width.saturating_sub(1);
        for step in narrowing {
            let widths = column_widths(&header, &rows);
            let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            if total <= width {
                break;
            }
            match step {
                Narrow::Drop(name) => {
                    if let Some(at) = header.iter().position(|h| h == name) {
                        header.remove(at);
                        align.remove(at);
                        rows.iter_mut().for_each(|row| drop(row.remove(at)));
                    }
                }
                Narrow::Elide(floor) => {
                    let last = widths.len() - 1;
                    let excess = total - width;
                    // The errors give first, then the names.
                    let last_gives = excess.min(widths[last].saturating_sub(*floor));
                    let first_gives = (excess - last_gives).min(widths[0].saturating_sub(*floor));
                    for row in &mut rows {
                        if last_gives > 0 && last > 0 {
                            row[last] = elide_middle(&row[last], widths[last] - last_gives);
                        }
                        if first_gives > 0 {
                            row[0] = elide_middle(&row[0], widths[0] - first_gives);
                        }
                    }
                }
            }
        }
    }
    format_table(&header, &rows, &align)
}

/// The width of each column: its widest cell or heading, counting only what shows.
fn column_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| measure_text_width(h)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(measure_text_width(cell));
        }
    }
    widths
}

/// Lays out `rows` under `header` in padded columns, one line each, trailing spaces trimmed.
/// Cells may be styled: widths count only what shows.
pub(crate) fn format_table(header: &[&str], rows: &[Vec<String>], align: &[Align]) -> String {
    let widths = column_widths(header, rows);
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for ((cell, width), align) in row.iter().zip(&widths).zip(align) {
            let pad = " ".repeat(width.saturating_sub(measure_text_width(cell)));
            match align {
                Align::Left => line.push_str(&format!("{cell}{pad}  ")),
                Align::Right => line.push_str(&format!("{pad}{cell}  ")),
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
