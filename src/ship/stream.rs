//! The daemon's `/build` response: JSON messages turned into events, for
//! both builders (the classic builder's `Step 2/5 : ...` lines and output,
//! BuildKit's status in the `aux` field through [`super::buildkit`]),
//! with what a failure reports (the step and its last lines).

use super::buildkit;
use super::event::Event;

/// What the stream said so far.
#[derive(Default)]
pub(crate) struct StreamState {
    current_step: Option<String>,
    steps: u32,
    tail: std::collections::VecDeque<String>,
    partial: String,
    image_id: Option<String>,
    buildkit: buildkit::Progress,
}

const TAIL: usize = 10;

impl StreamState {
    /// Dockerfile steps reported, by either builder.
    pub(crate) fn steps(&self) -> u32 {
        self.steps + self.buildkit.steps
    }

    /// The image id the stream announced.
    pub(crate) fn image_id(&self) -> Option<&str> {
        self.image_id.as_deref()
    }

    /// Whether a BuildKit RUN step is running (its silence is no stall).
    pub(crate) fn run_step_running(&self) -> bool {
        self.buildkit.run_step_running()
    }

    /// Turns one message into events.
    pub(crate) fn handle(
        &mut self,
        info: bollard::models::BuildInfo,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) {
        match info.aux {
            Some(bollard::models::BuildInfoAux::Default(bollard::models::ImageId {
                id: Some(id),
            })) => {
                self.image_id = Some(id.clone());
                on_event(Event::ImageId { id });
            }
            Some(bollard::models::BuildInfoAux::BuildKit(status)) => {
                self.buildkit.handle(&status, on_event);
            }
            _ => {}
        }
        if let Some(text) = info.stream {
            self.partial.push_str(&text);
            while let Some(pos) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=pos).collect();
                self.line(line.trim_end_matches(['\n', '\r']), on_event);
            }
        }
        if let Some(status) = info.status {
            // Pull progress of FROM images.
            let line = match info.id {
                Some(id) => format!("{id}: {status}"),
                None => status,
            };
            if info.progress_detail.is_none_or(|p| p.total.is_none()) {
                self.line(&line, on_event);
            }
        }
    }

    /// The step that failed and its last lines of output.
    pub(crate) fn failure(&self) -> (Option<String>, Vec<String>) {
        // Only one of the two builders' progress is ever filled in.
        match self.buildkit.failure() {
            (Some(step), tail) => (Some(step), tail),
            (None, _) => (
                self.current_step.clone(),
                self.tail.iter().cloned().collect(),
            ),
        }
    }

    fn line(&mut self, line: &str, on_event: &mut (dyn FnMut(Event) + Send)) {
        if line.trim().is_empty() {
            return;
        }
        if let Some(step) = parse_step(line) {
            self.current_step = Some(line.trim().to_string());
            self.steps += 1;
            self.tail.clear();
            on_event(step);
            return;
        }
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        on_event(Event::Log {
            line: line.to_string(),
        });
    }
}

/// `Step 2/5 : COPY a b` → a step event.
fn parse_step(line: &str) -> Option<Event> {
    let rest = line.strip_prefix("Step ")?;
    let (nums, instruction) = rest.split_once(" : ")?;
    let (n, total) = nums.split_once('/')?;
    Some(Event::Step {
        number: n.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        instruction: instruction.trim().to_string(),
        stage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse() {
        match parse_step("Step 2/5 : COPY a /b") {
            Some(Event::Step {
                number,
                total,
                instruction,
                stage: None,
            }) => assert_eq!((number, total, instruction.as_str()), (2, 5, "COPY a /b")),
            other => panic!("{other:?}"),
        }
        assert!(parse_step(" ---> Running in abc").is_none());
    }
}
