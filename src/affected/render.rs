//! The report as text: human, markdown (a PR comment, the step summary),
//! and the GitHub Actions matrix.

use super::{ImageReport, Report, StepReport};

/// Control characters in a path or message made visible (`\n`, `\x1b`)
/// and CI workflow commands neutralised, as [`crate::text::escape`] does:
/// a file name must not move the cursor or forge lines in a log or comment.
pub fn escape(s: &str) -> String {
    crate::text::escape(s).into_owned()
}

/// Markdown-inert text: escaped, with the characters markdown acts on
/// backslashed.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape(s).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '<'
                | '>'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// "`main.py` changed busts step 4/7 COPY app ./app (api); steps 1-3 stay cached"
pub fn bust_sentence(image: &str, step: &StepReport) -> String {
    let cause = step
        .causes
        .first()
        .cloned()
        .unwrap_or_else(|| "a change".into());
    format!(
        "{cause} busts step {} {} ({image}); {}",
        step.label,
        step.instruction,
        cached_before(step)
    )
}

fn cached_before(step: &StepReport) -> String {
    match step.position {
        0 => "no step stays cached".into(),
        1 => "step 1 stays cached".into(),
        n => format!("steps 1-{n} stay cached"),
    }
}

/// The report for a terminal.
pub fn human(r: &Report) -> String {
    let mut o = String::new();
    let head = match &r.head.commit {
        Some(c) => format!("{} ({})", r.head.rev, short(c)),
        None => "the work tree".into(),
    };
    let base = format!(
        "{} ({})",
        r.base.rev,
        short(r.base.commit.as_deref().unwrap_or(""))
    );
    o.push_str(&format!(
        "{} changed files from {} to {}\n",
        r.changed_files,
        escape(&base),
        escape(&head)
    ));
    for img in &r.images {
        if !img.affected {
            o.push_str(&format!("unaffected  {}\n", escape(&img.name)));
            continue;
        }
        o.push_str(&format!(
            "affected    {} ({})\n",
            escape(&img.name),
            escape(&img.dockerfile)
        ));
        for reason in &img.reasons {
            o.push_str(&format!("            {}\n", escape(reason)));
        }
    }
    let n = r.images.iter().filter(|i| i.affected).count();
    o.push_str(&format!("{n} of {} images affected\n", r.images.len()));
    o
}

/// The report as markdown, for a pull-request comment or the step summary.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let n = r.images.iter().filter(|i| i.affected).count();
    o.push_str(&format!(
        "### reggie-build affected: {n} of {} images\n\n",
        r.images.len()
    ));
    o.push_str(
        "| image | verdict | first rebuilt step | stays cached |\n| --- | --- | --- | --- |\n",
    );
    for img in &r.images {
        let (verdict, step, cached) = row(img);
        o.push_str(&format!(
            "| {} | {verdict} | {step} | {cached} |\n",
            escape_markdown(&img.name)
        ));
    }
    let affected: Vec<&ImageReport> = r.images.iter().filter(|i| i.affected).collect();
    if !affected.is_empty() {
        o.push('\n');
        for img in affected {
            o.push_str(&format!("**{}**\n\n", escape_markdown(&img.name)));
            for reason in &img.reasons {
                o.push_str(&format!("- {}\n", escape_markdown(reason)));
            }
            o.push('\n');
        }
    }
    o
}

fn row(img: &ImageReport) -> (String, String, String) {
    if !img.affected {
        return ("unaffected".into(), String::new(), "all".into());
    }
    match img.first_busted.first() {
        Some(s) => (
            "**affected**".into(),
            escape_markdown(&format!("{} {}", s.label, s.instruction)),
            match s.position {
                0 => "none".into(),
                1 => "step 1".into(),
                n => format!("steps 1-{n}"),
            },
        ),
        None => (
            "**affected**".into(),
            "none (image config)".into(),
            "all".into(),
        ),
    }
}

/// The `matrix` output: `{"include": [{"image", "context", "dockerfile"}]}`,
/// one line, for `strategy.matrix: ${{ fromJSON(...) }}`.
pub fn github_matrix(r: &Report) -> String {
    let include: Vec<serde_json::Value> = r
        .images
        .iter()
        .filter(|i| i.affected)
        .map(|i| {
            serde_json::json!({
                "image": i.name,
                "context": i.context,
                "dockerfile": i.dockerfile,
            })
        })
        .collect();
    crate::text::json_line(&serde_json::json!({ "include": include })).unwrap_or_default()
}

/// Lines for `$GITHUB_OUTPUT`: `matrix`, `any` (`true`/`false`: an empty
/// matrix fails a job, so guard it with `if: needs.x.outputs.any == 'true'`)
/// and `images` (space-separated names).
pub fn github_outputs(r: &Report) -> String {
    let names: Vec<String> = r
        .images
        .iter()
        .filter(|i| i.affected)
        .map(|i| escape(&i.name).replace(' ', "\\x20"))
        .collect();
    format!(
        "matrix={}\nany={}\nimages={}\n",
        github_matrix(r),
        !names.is_empty(),
        names.join(" ")
    )
}

fn short(c: &str) -> String {
    c.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("a\nb\x1b[31m"), "a\\nb\\x1b[31m");
        assert_eq!(escape_markdown("a|b_c\n"), "a\\|b\\_c\\\\n");
    }
}
