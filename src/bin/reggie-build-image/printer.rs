//! How a build's events are printed: JSON lines on stdout, plain lines on
//! stderr, or on a terminal plain lines above a live region; one image's
//! ([`Printer`]) or several images' at once ([`MultiPrinter`]).

use std::io::{IsTerminal, Write};

use reggie_build::ship::Event;

use crate::live::{terminal_width, LiveView, MultiView};

/// Prints events as JSON (stdout), plain lines (stderr), or on a terminal
/// plain lines above a live region ([`LiveView`]).
pub struct Printer {
    json: bool,
    live: Option<std::sync::Mutex<LiveView>>,
}

impl Printer {
    /// JSON with `--json`, else plain lines, live on a terminal.
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            live: (!json && std::io::stderr().is_terminal())
                .then(|| std::sync::Mutex::new(LiveView::new(terminal_width()))),
        }
    }

    pub fn print(&self, event: &Event) {
        if self.json {
            if let Ok(line) = reggie_build::text::json_line(event) {
                json_line(&line);
            }
            return;
        }
        let line = Self::line(event);
        let Some(live) = &self.live else {
            if let Some(line) = line {
                eprintln!("{line}");
            }
            return;
        };
        let mut view = live.lock().unwrap_or_else(|e| e.into_inner());
        let mut permanent = Vec::new();
        let mut force = true;
        match event {
            Event::Context { content_bytes, .. } => {
                view.expect_upload(*content_bytes);
                permanent.extend(line);
            }
            Event::Upload { bytes, done } => {
                view.uploaded(*bytes, *done);
                permanent.extend(line);
            }
            Event::Step { .. }
            | Event::Vertex {
                status: "started", ..
            } => {
                if let Some(l) = &line {
                    view.step(l.clone());
                }
                permanent.extend(line);
            }
            Event::Log { line: log } => {
                view.log(&reggie_build::text::escape(log));
                force = false;
            }
            Event::Push { digest: None, .. } => {
                if let Some(l) = line {
                    view.step(l);
                }
            }
            _ => permanent.extend(line),
        }
        if let Some(text) = view.render(&permanent, force) {
            to_stderr(&text);
        }
    }

    /// Clears the live region, so that final messages follow the log.
    pub fn finish(&self) {
        if let Some(live) = &self.live {
            let text = live.lock().unwrap_or_else(|e| e.into_inner()).clear();
            eprint!("{text}");
        }
    }

    /// The event as one plain line, if it makes one.
    pub fn line(event: &Event) -> Option<String> {
        let line = match event {
            Event::Context {
                digest,
                entries,
                content_bytes,
                dockerfile,
                compression,
            } => format!(
                "context: {entries} entries, {} ({digest}), dockerfile {dockerfile}, compression {compression}",
                size(*content_bytes)
            ),
            Event::Upload { bytes, done } => {
                if *done {
                    format!("upload: {} sent", size(*bytes))
                } else {
                    return None;
                }
            }
            Event::Step {
                number,
                total,
                instruction,
                stage,
            } => match stage {
                Some(stage) => format!("step {number}/{total} ({stage}): {instruction}"),
                None => format!("step {number}/{total}: {instruction}"),
            },
            Event::Vertex {
                index,
                name,
                status,
                seconds,
            } => match (*status, seconds) {
                ("started", _) => format!("#{index} {name}"),
                ("cached", _) => format!("#{index} CACHED"),
                (status, Some(s)) => format!("#{index} {} {s:.1}s", status.to_uppercase()),
                (status, None) => format!("#{index} {}", status.to_uppercase()),
            },
            Event::Log { line } => format!("  | {line}"),
            Event::Warning { message } => format!("warning: {message}"),
            Event::ImageId { id } => format!("image: {id}"),
            Event::Tag { tag } => format!("tagged: {tag}"),
            Event::Skip { reason, image } => {
                format!("skipped build: image {image} already built from this context ({reason})")
            }
            Event::Push {
                tag,
                status,
                digest,
            } => match digest {
                Some(d) => format!("pushed: {tag}@{d}"),
                None => format!("push {tag}: {status}"),
            },
            Event::Result { .. } => return None,
        };
        // Step names, logs and messages carry the Dockerfile and the
        // build's output: escaped, so they cannot drive the terminal or
        // pass for a CI workflow command.
        Some(reggie_build::text::escape(&line).into_owned())
    }
}

fn size(bytes: u64) -> String {
    reggie_build::units::humanize(bytes)
}

/// Prints the events of several images, each line with its image's
/// name (and each JSON event with an `image` field).
pub struct MultiPrinter {
    json: bool,
    live: Option<std::sync::Mutex<MultiView>>,
}

impl MultiPrinter {
    /// JSON with `--json`, else plain lines, a live row per image on a
    /// terminal.
    pub fn new(json: bool, names: &[String]) -> MultiPrinter {
        MultiPrinter {
            json,
            live: (!json && std::io::stderr().is_terminal())
                .then(|| std::sync::Mutex::new(MultiView::new(terminal_width(), names))),
        }
    }

    pub fn print(&self, name: &str, event: &Event) {
        if self.json {
            if let Ok(mut v) = serde_json::to_value(event) {
                v["image"] = serde_json::json!(name);
                if let Ok(line) = reggie_build::text::json_line(&v) {
                    json_line(&line);
                }
            }
            return;
        }
        let line = Printer::line(event).map(|l| format!("[{name}] {l}"));
        let Some(live) = &self.live else {
            if let Some(line) = line {
                eprintln!("{line}");
            }
            return;
        };
        let mut view = live.lock().unwrap_or_else(|e| e.into_inner());
        let mut permanent = Vec::new();
        let mut force = true;
        match event {
            Event::Log { .. } => force = false,
            Event::Upload { bytes, done: false } => {
                view.status(name, format!("upload: {} sent", size(*bytes)));
                force = false;
            }
            Event::Push {
                digest: None,
                status,
                ..
            } => {
                view.status(name, format!("push: {status}"));
                force = false;
            }
            _ => {
                if let Some(l) = Printer::line(event) {
                    view.status(name, l);
                }
                permanent.extend(line);
            }
        }
        if let Some(text) = view.render(&permanent, force) {
            to_stderr(&text);
        }
    }

    pub fn status(&self, name: &str, status: String) {
        if let Some(live) = &self.live {
            let mut view = live.lock().unwrap_or_else(|e| e.into_inner());
            view.status(name, status);
            if let Some(text) = view.render(&[], true) {
                eprint!("{text}");
            }
        }
    }

    pub fn finish(&self) {
        if let Some(live) = &self.live {
            let text = live.lock().unwrap_or_else(|e| e.into_inner()).clear();
            eprint!("{text}");
        }
    }
}

/// One JSON value a line on stdout, flushed (a consumer reads events as
/// they come). A failed write is kept for [`stdout_result`].
fn json_line(value: &dyn std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{value}").and_then(|()| out.flush()) {
        let mut slot = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(e);
    }
}

/// The first failed write of an event to stdout.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// The run's error when an event could not be written to stdout (a reader
/// that went away missed events, whatever the build did).
pub fn stdout_result() -> anyhow::Result<()> {
    let mut slot = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    match slot.take() {
        Some(e) => Err(anyhow::Error::new(e).context("writing the JSON events to stdout")),
        None => Ok(()),
    }
}

/// Live-region text to stderr, flushed.
fn to_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
