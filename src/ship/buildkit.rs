//! BuildKit's progress, decoded into [`Event`]s.
//!
//! With `version=2` the daemon reports progress as `moby.buildkit.trace`
//! items: base64 protobuf `StatusResponse`s (bollard decodes them) that
//! each carry the *changes* since the last one: vertices (build steps and
//! internal operations) that started, finished or failed, byte counters,
//! log chunks and warnings. A vertex is announced several times as its
//! state changes, so this keeps per-vertex state and reports each change
//! once, numbered `#1`, `#2`, ... in order of appearance as `docker
//! buildx build --progress=plain` does.

use std::collections::{HashMap, VecDeque};

use bollard::moby::buildkit::v1::{StatusResponse, Vertex};

use super::event::Event;

/// Lines of output kept per vertex for the error message of a failed step.
const TAIL: usize = 10;

/// Renders a stream of `StatusResponse`s.
#[derive(Default)]
pub struct Progress {
    vertices: HashMap<String, VertexState>,
    next_index: u32,
    /// Numbered Dockerfile steps seen (`[2/5] COPY ...`).
    pub steps: u32,
    /// The last vertex that failed, for the error message.
    failed: Option<String>,
    /// The step that started last (its digest), when none failed.
    current: Option<String>,
}

#[derive(Default)]
struct VertexState {
    index: u32,
    name: String,
    started: bool,
    finished: bool,
    /// Bytes of a log line not yet ended by `\n`.
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl VertexState {
    /// One line of the vertex's output: kept for the tail, and reported.
    fn output(&mut self, line: String, on_event: &mut (dyn FnMut(Event) + Send)) {
        on_event(Event::Log {
            line: format!("#{} {line}", self.index),
        });
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// `[stage-1 2/5] RUN make` → (`Some("stage-1")`, 2, 5, `RUN make`).
fn parse_step_name(name: &str) -> Option<(Option<&str>, u32, u32, &str)> {
    let rest = name.strip_prefix('[')?;
    let (inside, instruction) = rest.split_once("] ")?;
    let (stage, counts) = match inside.rsplit_once(' ') {
        Some((stage, counts)) => (Some(stage), counts),
        None => (None, inside),
    };
    let (n, total) = counts.split_once('/')?;
    Some((
        stage,
        n.parse().ok()?,
        total.parse().ok()?,
        instruction.trim(),
    ))
}

fn seconds(v: &Vertex) -> Option<f64> {
    let (s, c) = (v.started.as_ref()?, v.completed.as_ref()?);
    let nanos = (c.seconds - s.seconds) as f64 * 1e9 + f64::from(c.nanos - s.nanos);
    // Milliseconds are plenty for a progress report.
    Some(((nanos / 1e6).max(0.0)).round() / 1e3)
}

impl Progress {
    /// Whether a `RUN` step is running: its silence is its own (a long
    /// compile), not a stalled daemon.
    pub fn run_step_running(&self) -> bool {
        self.vertices.values().any(|v| {
            v.started
                && !v.finished
                && parse_step_name(&v.name).is_some_and(|(_, _, _, i)| {
                    i.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("RUN "))
                })
        })
    }

    /// Reports what changed in `status`.
    pub fn handle(&mut self, status: &StatusResponse, on_event: &mut (dyn FnMut(Event) + Send)) {
        for v in &status.vertexes {
            self.vertex(v, on_event);
        }
        for log in &status.logs {
            let Some(state) = self.vertices.get_mut(&log.vertex) else {
                continue;
            };
            state.partial.extend_from_slice(&log.msg);
            while let Some(pos) = state.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = state.partial.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                state.output(line, on_event);
            }
        }
        for w in &status.warnings {
            on_event(Event::Warning {
                message: String::from_utf8_lossy(&w.short).trim().to_string(),
            });
        }
    }

    fn vertex(&mut self, v: &Vertex, on_event: &mut (dyn FnMut(Event) + Send)) {
        let next = &mut self.next_index;
        let state = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
            *next += 1;
            VertexState {
                index: *next,
                name: v.name.clone(),
                ..Default::default()
            }
        });
        let index = state.index;
        if (v.started.is_some() || v.cached) && !state.started {
            state.started = true;
            match parse_step_name(&v.name) {
                Some((stage, number, total, instruction)) => {
                    self.steps += 1;
                    self.current = Some(v.digest.clone());
                    on_event(Event::Step {
                        number,
                        total,
                        instruction: instruction.to_string(),
                        stage: stage.map(str::to_string),
                    });
                }
                None => on_event(Event::Vertex {
                    index,
                    name: v.name.clone(),
                    status: "started",
                    seconds: None,
                }),
            }
        }
        let done = v.completed.is_some() || v.cached || !v.error.is_empty();
        if done && !state.finished {
            state.finished = true;
            let rest = std::mem::take(&mut state.partial);
            let rest = String::from_utf8_lossy(&rest).trim().to_string();
            if !rest.is_empty() {
                state.output(rest, on_event);
            }
            let status = if !v.error.is_empty() {
                self.failed = Some(v.digest.clone());
                "error"
            } else if v.cached {
                "cached"
            } else {
                "done"
            };
            on_event(Event::Vertex {
                index,
                name: v.name.clone(),
                status,
                seconds: seconds(v),
            });
        }
    }

    /// The failed step's name (else the last one started) and its last
    /// lines of output.
    pub fn failure(&self) -> (Option<String>, Vec<String>) {
        let vertex = self
            .failed
            .as_ref()
            .or(self.current.as_ref())
            .and_then(|d| self.vertices.get(d));
        match vertex {
            Some(s) => (Some(s.name.clone()), s.tail.iter().cloned().collect()),
            None => (None, Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{VertexLog, VertexWarning};
    use bollard_buildkit_proto::google::protobuf::Timestamp;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn run_steps_are_quiet_on_their_own() {
        let mut p = Progress::default();
        let mut sink = |_: Event| {};
        let mut load = vertex("sha256:l", "[internal] load build context");
        load.started = ts(1, 0);
        let mut copy = vertex("sha256:c", "[2/3] COPY . /app");
        copy.started = ts(1, 0);
        p.handle(
            &StatusResponse {
                vertexes: vec![load, copy.clone()],
                ..Default::default()
            },
            &mut sink,
        );
        assert!(!p.run_step_running());
        let mut run = vertex("sha256:r", "[stage-1 3/3] RUN make");
        run.started = ts(2, 0);
        p.handle(
            &StatusResponse {
                vertexes: vec![run.clone()],
                ..Default::default()
            },
            &mut sink,
        );
        assert!(p.run_step_running());
        run.completed = ts(3, 0);
        p.handle(
            &StatusResponse {
                vertexes: vec![run],
                ..Default::default()
            },
            &mut sink,
        );
        assert!(!p.run_step_running());
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn run(updates: Vec<StatusResponse>) -> (Progress, Vec<Event>) {
        let mut p = Progress::default();
        let mut events = Vec::new();
        for u in &updates {
            p.handle(u, &mut |e| events.push(e));
        }
        (p, events)
    }

    fn render(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect()
    }

    #[test]
    fn step_names_parse() {
        let table = [
            ("[2/5] COPY a /b", Some((None, 2, 5, "COPY a /b"))),
            (
                "[stage-1 3/4] RUN make",
                Some((Some("stage-1"), 3, 4, "RUN make")),
            ),
            (
                "[build 1/2] FROM docker.io/x",
                Some((Some("build"), 1, 2, "FROM docker.io/x")),
            ),
            ("[internal] load build definition from Dockerfile", None),
            ("exporting to image", None),
            ("[a/b] COPY", None),
            ("[", None),
            ("", None),
        ];
        for (name, want) in table {
            assert_eq!(parse_step_name(name), want, "{name}");
        }
    }

    #[test]
    fn each_change_reported_once_in_order() {
        let mut started = vertex("sha256:a", "[internal] load remote build context");
        started.started = ts(10, 0);
        let mut done = started.clone();
        done.completed = ts(10, 500_000_000);
        let mut step = vertex("sha256:b", "[1/2] COPY a.txt /a.txt");
        step.started = ts(11, 0);
        let mut cached = vertex("sha256:c", "[2/2] COPY sub /sub");
        cached.cached = true;
        let (p, events) = run(vec![
            StatusResponse {
                vertexes: vec![vertex("sha256:a", "[internal] load remote build context")],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![started.clone()],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![started, done.clone(), done],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![step.clone(), cached],
                ..Default::default()
            },
        ]);
        assert_eq!(
            render(&events),
            [
                r#"{"event":"vertex","index":1,"name":"[internal] load remote build context","status":"started"}"#,
                r#"{"event":"vertex","index":1,"name":"[internal] load remote build context","status":"done","seconds":0.5}"#,
                r#"{"event":"step","number":1,"total":2,"instruction":"COPY a.txt /a.txt"}"#,
                r#"{"event":"step","number":2,"total":2,"instruction":"COPY sub /sub"}"#,
                r#"{"event":"vertex","index":3,"name":"[2/2] COPY sub /sub","status":"cached"}"#,
            ]
        );
        assert_eq!(p.steps, 2);
    }

    #[test]
    fn logs_split_into_lines_and_failure_keeps_the_tail() {
        let mut run_step = vertex("sha256:r", "[stage-1 2/3] RUN ./build.sh");
        run_step.started = ts(1, 0);
        let mut failed = run_step.clone();
        failed.completed = ts(2, 0);
        failed.error =
            "process \"/bin/sh -c ./build.sh\" did not complete successfully: exit code: 3".into();
        let log = |msg: &[u8]| VertexLog {
            vertex: "sha256:r".into(),
            msg: msg.to_vec(),
            stream: 1,
            ..Default::default()
        };
        let (p, events) = run(vec![
            StatusResponse {
                vertexes: vec![run_step],
                logs: vec![
                    log(b"compiling\nhal"),
                    log(b"f a line\n"),
                    log(b"no newline"),
                ],
                warnings: vec![VertexWarning {
                    short: b"FromAsCasing: 'as' and 'FROM' keywords' casing do not match".to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![failed],
                ..Default::default()
            },
        ]);
        let lines = render(&events);
        assert_eq!(
            lines,
            [
                r#"{"event":"step","number":2,"total":3,"instruction":"RUN ./build.sh","stage":"stage-1"}"#,
                r##"{"event":"log","line":"#1 compiling"}"##,
                r##"{"event":"log","line":"#1 half a line"}"##,
                r#"{"event":"warning","message":"FromAsCasing: 'as' and 'FROM' keywords' casing do not match"}"#,
                r##"{"event":"log","line":"#1 no newline"}"##,
                r#"{"event":"vertex","index":1,"name":"[stage-1 2/3] RUN ./build.sh","status":"error","seconds":1.0}"#,
            ]
        );
        let (step, tail) = p.failure();
        assert_eq!(step.as_deref(), Some("[stage-1 2/3] RUN ./build.sh"));
        assert_eq!(tail, ["compiling", "half a line", "no newline"]);
    }

    #[test]
    fn logs_of_unknown_vertices_and_garbage_are_harmless() {
        let (p, events) = run(vec![StatusResponse {
            logs: vec![VertexLog {
                vertex: "sha256:nowhere".into(),
                msg: vec![0xff, b'\n'],
                ..Default::default()
            }],
            vertexes: vec![Vertex {
                started: ts(5, 0),
                completed: ts(4, -7),
                ..Default::default()
            }],
            ..Default::default()
        }]);
        assert_eq!(
            render(&events),
            [
                r#"{"event":"vertex","index":1,"name":"","status":"started"}"#,
                r#"{"event":"vertex","index":1,"name":"","status":"done","seconds":0.0}"#,
            ]
        );
        assert_eq!(p.failure(), (None, Vec::new()));
    }
}
