//! Fitting what is drawn to the terminal: line templates for a width, and names elided in the
//! middle (`very-long-fi…-name.iso`) so that no line wraps, even at 80 columns.

use console::measure_text_width;

/// The width of stderr's terminal: `COLUMNS` when set (a user's override, and how tests fix
/// it), else the terminal's own; `None` when stderr is not a terminal and `COLUMNS` is unset.
pub(crate) fn stderr_width() -> Option<usize> {
    width_of(&console::Term::stderr())
}

/// The width of stdout's terminal, as [`stderr_width`] says it for stderr.
pub(crate) fn stdout_width() -> Option<usize> {
    width_of(&console::Term::stdout())
}

fn width_of(term: &console::Term) -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| term.size_checked().map(|(_rows, cols)| usize::from(cols)))
}

/// `text` cut to at most `width` columns, keeping its start and its end with `…` between.
pub(crate) fn elide_middle(text: &str, width: usize) -> String {
    if measure_text_width(text) <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let head_width = keep.div_ceil(2);
    let mut head = String::new();
    for c in text.chars() {
        if measure_text_width(&format!("{head}{c}")) > head_width {
            break;
        }
        head.push(c);
    }
    let tail_width = keep - measure_text_width(&head);
    let mut tail: Vec<char> = Vec::new();
    for c in text.chars().rev() {
        let candidate: String = std::iter::once(c)
            .chain(tail.iter().rev().copied())
            .collect();
        if measure_text_width(&candidate) > tail_width {
            break;
        }
        tail.push(c);
    }
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}…{tail}")
}

/// `line` broken at spaces into lines of at most `width` columns, continued with an indent;
/// a word longer than a line is elided in the middle.
pub(crate) fn wrap(line: &str, width: usize) -> String {
    const INDENT: &str = "    ";
    let width = width.max(INDENT.len() + 8);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let room = width - if lines.is_empty() { 0 } else { INDENT.len() };
        let word = elide_middle(word, room);
        let joined = measure_text_width(&current) + 1 + measure_text_width(&word);
        if !current.is_empty() && joined > room {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    lines.push(current);
    lines.join(&format!("\n{INDENT}"))
}

/// Each line of `text` cut into lines of at most `width` columns, nothing elided (for lines
/// that are read whole, like `-v`'s headers).
pub(crate) fn cut_to_width(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut used = 0;
        for c in line.chars() {
            let w = measure_text_width(c.encode_utf8(&mut [0; 4]));
            if used + w > width && used > 0 {
                out.push('\n');
                used = 0;
            }
            out.push(c);
            used += w;
        }
    }
    out
}

/// The templates of one display, laid out for its width.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Columns a line may take.
    pub(crate) width: usize,
    /// Columns of the name at the start of each line.
    pub(crate) name: usize,
    pub(crate) bar: String,
    pub(crate) spinner: String,
    pub(crate) overall: String,
    pub(crate) overall_streaming: String,
}

impl Layout {
    /// The layout for `width` columns (wide enough for everything when unknown). Lines never
    /// reach the last column: some terminals wrap when it is written.
    pub(crate) fn for_width(width: Option<usize>) -> Layout {
        let width = width.unwrap_or(120).max(40) - 1;
        // The parts after the name, by width: a bar only where it leaves the name room.
        // Sizes take up to 11 columns (`1023.99 MiB`), rates 13 (`1023.99 KiB/s`).
        let (bar, numbers) = match width {
            100.. => (28, "{bytes:>11}/{total_bytes:<11} {rate:>13} ETA {eta:>4}"),
            72.. => (12, "{bytes:>11}/{total_bytes:<11} {rate:>13} {eta:>4}"),
            _ => (0, "{bytes:>11}/{total_bytes:<11} {rate:>13}"),
        };
        // Widths of the parts as drawn: `{bytes:>11}` is 11 columns, and so on.
        let numbers_width = match width {
            100.. => 11 + 1 + 11 + 1 + 13 + 5 + 4,
            72.. => 11 + 1 + 11 + 1 + 13 + 1 + 4,
            _ => 11 + 1 + 11 + 1 + 13,
        };
        let bar_part = |bar: usize| match bar {
            0 => String::new(),
            n => format!(" [{{bar:{n}}}]"),
        };
        let name = width
            .saturating_sub(bar + if bar > 0 { 3 } else { 0 } + 1 + numbers_width)
            .clamp(8, 40);
        let bar_line = format!("{{msg:{name}!}}{} {numbers}", bar_part(bar));
        let spinner = format!("{{msg:{name}!}} {{spinner}} {{bytes:>11}} {{rate:>13}}");
        // The overall line: `total ` then its `{totals}` (see `OverallKey`), which fits the
        // counts, rate, ETA and bar into what is left (`overall_room`).
        let overall = "{prefix:.bold} {totals}".to_owned();
        let overall_streaming = "{prefix:.bold} {spinner} {totals}".to_owned();
        Layout {
            width,
            name,
            bar: bar_line,
            spinner,
            overall,
            overall_streaming,
        }
    }
}

impl Layout {
    /// Columns the overall line's `{totals}` may take: all after `total ` (and the spinner
    /// while the list is being read).
    pub(crate) fn overall_room(&self, counted: bool) -> usize {
        let before = if counted { 6 } else { 8 };
        self.width.saturating_sub(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_to_width_keeps_every_character() {
        assert_eq!(
            cut_to_width("> a: 123456789\n< b", 6),
            "> a: 1\n234567\n89\n< b"
        );
        assert_eq!(cut_to_width("short", 80), "short");
        let long = "x".repeat(250);
        let cut = cut_to_width(&long, 80);
        assert!(cut.lines().all(|l| l.len() <= 80));
        assert_eq!(cut.replace('\n', ""), long);
    }

    #[test]
    fn names_are_elided_in_the_middle() {
        assert_eq!(elide_middle("short.iso", 20), "short.iso");
        let long = "debian-12.5.0-amd64-netinst-with-firmware.iso";
        let cut = elide_middle(long, 20);
        assert_eq!(measure_text_width(&cut), 20, "{cut}");
        assert!(
            cut.starts_with("debian-12.") && cut.ends_with("ware.iso"),
            "{cut}"
        );
        assert!(cut.contains('…'));
        let wide = elide_middle("日本語のとても長いファイル名.txt", 12);
        assert!(measure_text_width(&wide) <= 12, "{wide}");
    }

    #[test]
    fn at_80_columns_every_template_leaves_the_name_room() {
        for width in [40, 60, 80, 100, 120, 200] {
            let layout = Layout::for_width(Some(width));
            assert!(layout.name >= 8, "{width}: {layout:?}");
        }
        // 21 + ` [` + 12 + `] ` + 42 = 79 columns.
        assert_eq!(Layout::for_width(Some(80)).name, 21);
    }

    #[test]
    fn long_lines_wrap_at_spaces_within_the_width() {
        let line = "FAILED  http://127.0.0.1:18952/files/file-number-2.bin: interrupted (partial kept: /tmp/oc/file-number-2.bin.part; resume with -c)";
        let wrapped = wrap(line, 79);
        assert!(
            wrapped.lines().all(|l| measure_text_width(l) <= 79),
            "{wrapped}"
        );
        assert_eq!(wrapped.replace("\n    ", " "), line);
        assert_eq!(wrap("short", 79), "short");
    }
}
