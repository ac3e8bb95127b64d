//! `size --prove` as text: the size before and after, each fix with its
//! measured saving and its check, and the items left as they are.

use std::fmt::Write as _;

use crate::inspect::prove::{Outcome, Proof};
use crate::units::humanize;

fn signed(n: i64) -> String {
    match n {
        n if n < 0 => format!("-{} (grew)", humanize(n.unsigned_abs())),
        n => humanize(n as u64),
    }
}

/// The proof for a terminal. "verified" is written only for a fix whose
/// check passed.
pub fn human(p: &Proof) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "size --prove: {} (context {}; {})",
        p.dockerfile, p.context, p.found
    );
    let _ = writeln!(
        out,
        "before: {} in {} layers ({} bytes of files, {} of them waste)",
        humanize(p.before.uncompressed),
        p.before.layers,
        p.before.file_bytes,
        humanize(p.before.waste_bytes)
    );
    for (i, s) in p.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nfix {}: {} ({}, {} counted)",
            i + 1,
            s.what,
            s.path,
            humanize(s.predicted)
        );
        let _ = writeln!(out, "  {}", s.fix.title);
        for c in &s.fix.changes {
            let _ = writeln!(out, "    {}", c.describe());
        }
        match &s.outcome {
            Outcome::Failed { error } => {
                let _ = writeln!(
                    out,
                    "  not applied: the fixed Dockerfile did not build: {error}"
                );
            }
            Outcome::Built {
                size,
                saved,
                saved_file_bytes,
                check,
                verified,
            } => {
                let _ = writeln!(
                    out,
                    "  measured: {} -> {} saved ({} bytes of files{})",
                    humanize(size.uncompressed),
                    signed(*saved),
                    saved_file_bytes,
                    if *saved_file_bytes == s.predicted as i64 {
                        ", as counted"
                    } else {
                        ""
                    }
                );
                if *verified {
                    let _ = writeln!(
                        out,
                        "  verified: {} paths unchanged (same list, mode, owner, content hash){}{}",
                        check.unchanged,
                        match check.removed {
                            0 => String::new(),
                            n => format!(", {n} waste paths removed"),
                        },
                        match check.waste_changed {
                            0 => String::new(),
                            n => format!(", {n} paths of other waste changed"),
                        }
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "  not verified: {} paths differ ({} unchanged); the fix is left out:",
                        check.differences_total, check.unchanged
                    );
                    for d in &check.differences {
                        let _ = writeln!(out, "    {}: {}", d.path, d.what);
                    }
                    if check.differences_total > check.differences.len() {
                        let _ = writeln!(
                            out,
                            "    ... and {} more",
                            check.differences_total - check.differences.len()
                        );
                    }
                }
            }
        }
    }
    if !p.not_applied.is_empty() {
        let _ = writeln!(out, "\nnot applied:");
        for n in &p.not_applied {
            let _ = writeln!(
                out,
                "  {} {} ({}): {}",
                humanize(n.bytes),
                n.what,
                n.path,
                n.reason
            );
        }
    }
    let verified = p
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Built { verified: true, .. }))
        .count();
    let _ = writeln!(
        out,
        "\nafter: {} in {} layers: {} saved ({} bytes of files) by {verified} verified fix{}",
        humanize(p.after.uncompressed),
        p.after.layers,
        signed(p.saved),
        p.saved_file_bytes,
        if verified == 1 { "" } else { "es" }
    );
    if verified > 0 {
        let _ = writeln!(out, "\nthe fixed Dockerfile:\n{}", p.fixed_dockerfile);
    }
    out
}
