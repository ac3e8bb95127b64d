//! The live view of `image` on a terminal: lines that matter stay in the
//! scrollback (context, steps, warnings, image id, tags, pushes), and a
//! few lines at the bottom are redrawn in place: the upload bar while the
//! context is sent, then the current step and the tail of its output.

use std::time::{Duration, Instant};

/// Output lines of the current step kept on screen.
const TAIL: usize = 5;
/// Redraws for output lines at most this often (a chatty step would
/// otherwise spend its time repainting).
const REDRAW_EVERY: Duration = Duration::from_millis(50);

/// The state behind the redrawn lines.
pub struct LiveView {
    width: usize,
    upload: Option<(u64, Option<u64>)>,
    step: Option<String>,
    tail: std::collections::VecDeque<String>,
    /// Lines of the live region currently on screen.
    drawn: usize,
    last_draw: Option<Instant>,
}

impl LiveView {
    /// A view for a terminal `width` columns wide.
    pub fn new(width: usize) -> LiveView {
        LiveView {
            width: width.max(20),
            upload: None,
            step: None,
            tail: Default::default(),
            drawn: 0,
            last_draw: None,
        }
    }

    /// The context's size, so the upload bar can show a fraction.
    pub fn expect_upload(&mut self, content_bytes: u64) {
        self.upload = Some((0, Some(content_bytes)));
    }

    pub fn uploaded(&mut self, bytes: u64, done: bool) {
        let total = self.upload.and_then(|(_, t)| t);
        self.upload = (!done).then_some((bytes, total));
    }

    pub fn step(&mut self, line: String) {
        self.step = Some(line);
        self.tail.clear();
    }

    pub fn log(&mut self, line: &str) {
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    /// The redrawn lines, each cut to the terminal's width.
    pub fn frame(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((sent, total)) = self.upload {
            lines.push(upload_bar(sent, total, self.width));
        }
        if let Some(step) = &self.step {
            lines.push(format!("> {step}"));
            for l in &self.tail {
                lines.push(format!("  | {l}"));
            }
        }
        lines.into_iter().map(|l| cut(&l, self.width)).collect()
    }

    /// Escape sequences and text that replace the live region with
    /// `permanent` lines (kept in the scrollback) followed by the frame.
    /// `None` when nothing needs drawing yet (throttled).
    pub fn render(&mut self, permanent: &[String], force: bool) -> Option<String> {
        let now = Instant::now();
        if permanent.is_empty()
            && !force
            && self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < REDRAW_EVERY)
        {
            return None;
        }
        let mut out = String::new();
        if self.drawn > 0 {
            // Up to the region's first line, then clear to the end.
            out.push_str(&format!("\r\x1b[{}A\x1b[J", self.drawn));
        }
        for p in permanent {
            out.push_str(p);
            out.push('\n');
        }
        let frame = self.frame();
        for l in &frame {
            out.push_str(l);
            out.push('\n');
        }
        self.drawn = frame.len();
        self.last_draw = Some(now);
        Some(out)
    }

    /// Clears the live region (before the final result).
    pub fn clear(&mut self) -> String {
        let out = if self.drawn > 0 {
            format!("\r\x1b[{}A\x1b[J", self.drawn)
        } else {
            String::new()
        };
        self.drawn = 0;
        self.upload = None;
        self.step = None;
        self.tail.clear();
        out
    }
}

/// The live view of `image --all` on a terminal: permanent lines as for
/// one image, prefixed with the image's name, and below them one redrawn
/// line per image with what it is doing now.
pub struct MultiView {
    width: usize,
    /// Images in the order given, with their status line.
    lines: Vec<(String, String)>,
    drawn: usize,
    last_draw: Option<Instant>,
}

impl MultiView {
    pub fn new(width: usize, names: &[String]) -> MultiView {
        MultiView {
            width: width.max(20),
            lines: names
                .iter()
                .map(|n| (n.clone(), "waiting".into()))
                .collect(),
            drawn: 0,
            last_draw: None,
        }
    }

    pub fn status(&mut self, name: &str, status: String) {
        if let Some(l) = self.lines.iter_mut().find(|(n, _)| n == name) {
            l.1 = status;
        }
    }

    /// As [`LiveView::render`].
    pub fn render(&mut self, permanent: &[String], force: bool) -> Option<String> {
        let now = Instant::now();
        if permanent.is_empty()
            && !force
            && self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < REDRAW_EVERY)
        {
            return None;
        }
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\r\x1b[{}A\x1b[J", self.drawn));
        }
        for p in permanent {
            out.push_str(p);
            out.push('\n');
        }
        let name_width = self
            .lines
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, status) in &self.lines {
            out.push_str(&cut(&format!("{name:name_width$}  {status}"), self.width));
            out.push('\n');
        }
        self.drawn = self.lines.len();
        self.last_draw = Some(now);
        Some(out)
    }

    /// Clears the live region (before the final results).
    pub fn clear(&mut self) -> String {
        let out = if self.drawn > 0 {
            format!("\r\x1b[{}A\x1b[J", self.drawn)
        } else {
            String::new()
        };
        self.drawn = 0;
        out
    }
}

fn upload_bar(sent: u64, total: Option<u64>, width: usize) -> String {
    let amount = reggie_build::units::humanize(sent);
    match total.filter(|t| *t > 0) {
        Some(total) => {
            // Headers make the upload a little larger than the contents.
            let fraction = (sent as f64 / total as f64).min(1.0);
            let bar_width = width.saturating_sub(40).clamp(10, 40);
            let filled = (fraction * bar_width as f64).round() as usize;
            format!(
                "upload [{}{}] {:>3}% {amount} of {}",
                "#".repeat(filled),
                " ".repeat(bar_width - filled),
                (fraction * 100.0).round() as u32,
                reggie_build::units::humanize(total)
            )
        }
        None => format!("upload {amount}"),
    }
}

/// `line` cut to `width` characters (a wrapped line would break the count
/// of lines to redraw), control characters shown as spaces.
fn cut(line: &str, width: usize) -> String {
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(width.saturating_sub(1))
        .collect()
}

/// The terminal's width in columns (stderr), or 80.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_then_step_with_tail() {
        let mut v = LiveView::new(80);
        v.expect_upload(1000);
        v.uploaded(500, false);
        assert_eq!(
            v.frame(),
            ["upload [####################                    ]  50% 500 B of 1 kB"]
        );
        v.uploaded(1100, true);
        assert!(v.frame().is_empty());
        v.step("step 2/3: RUN make".into());
        for i in 0..7 {
            v.log(&format!("line {i}"));
        }
        assert_eq!(
            v.frame(),
            [
                "> step 2/3: RUN make",
                "  | line 2",
                "  | line 3",
                "  | line 4",
                "  | line 5",
                "  | line 6"
            ]
        );
        v.step("step 3/3: COPY a b".into());
        assert_eq!(v.frame(), ["> step 3/3: COPY a b"]);
    }

    #[test]
    fn redraw_replaces_the_region_and_keeps_permanent_lines() {
        let mut v = LiveView::new(40);
        v.step("step 1/1: RUN x".into());
        let first = v
            .render(&["context: 3 entries".into()], true)
            .unwrap_or_default();
        assert_eq!(first, "context: 3 entries\n> step 1/1: RUN x\n");
        v.log("out\x1b[2Jput\twith controls and a very long tail beyond forty");
        let second = v.render(&[], true).unwrap_or_default();
        assert_eq!(
            second,
            "\r\x1b[1A\x1b[J> step 1/1: RUN x\n  | out [2Jput with controls and a very\n"
        );
        // Throttled: an output line right after a draw waits.
        v.log("more");
        assert!(v.render(&[], false).is_none());
        assert_eq!(v.clear(), "\r\x1b[2A\x1b[J");
        assert_eq!(v.clear(), "");
    }

    #[test]
    fn several_images_one_line_each() {
        let mut v = MultiView::new(30, &["api".into(), "worker".into()]);
        let first = v.render(&[], true).unwrap_or_default();
        assert_eq!(first, "api     waiting\nworker  waiting\n");
        v.status("worker", "step 2/3: COPY worker/ /app/ and more".into());
        let second = v
            .render(&["[api] image: sha256:1".into()], false)
            .unwrap_or_default();
        // Up over the two lines, the permanent line, then the region again
        // (each line cut to the width).
        assert_eq!(
            second,
            "\r\x1b[2A\x1b[J[api] image: sha256:1\napi     waiting\nworker  step 2/3: COPY worker\n"
        );
        assert_eq!(v.clear(), "\r\x1b[2A\x1b[J");
    }
}
