//! `image --all` / `--affected`: several images of `reggie-build.toml` in
//! one run, at most `jobs` at a time, on one daemon connection. Each
//! image's options are the shared ones with the config's context,
//! Dockerfile, target, platform and build args (the shared build args and
//! target win, as for `check`), and tags expanded from the config's
//! templates. A failing image does not stop the others.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt;

use crate::affected::{self, AffectedError, Head};
use crate::check::Target;
use crate::config::{self, Config, ConfigError, Image};
use crate::plan::PlanOptions;
use crate::ship::{self, Event};

use super::image::{image_on, ImageError, ImageOptions, ImageOutcome};

/// Which images of the config a run builds.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every configured image (`image --all`).
    All,
    /// The images a git change affects, as `reggie-build affected`
    /// decides (`image --affected`).
    Affected {
        /// The revision compared with.
        base: String,
        /// The side checked: a revision or the work tree.
        head: Head,
    },
}

/// The images a [`Selection`] chose, in config order.
#[derive(Debug)]
pub struct Selected {
    /// The config they come from.
    pub config: Config,
    /// The images to build (empty: a change that affects none).
    pub images: Vec<Image>,
    /// With [`Selection::Affected`], the comparison that chose them.
    pub affected: Option<affected::Report>,
}

/// Why no image could be selected.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(
        "image --all and --affected build the images of a {} (none found here or above, up to the repository root); run `reggie-build discover --write` to create one",
        config::FILE_NAME
    )]
    /// No config file was given or found.
    NoConfig,
    #[error(transparent)]
    /// The config file could not be read.
    Config(#[from] ConfigError),
    #[error(transparent)]
    /// The change could not be compared.
    Affected(#[from] AffectedError),
    #[error("{} configures no images", .0.display())]
    /// `--all` of a config without images.
    NoImages(PathBuf),
}

/// Reads the config (`path`, or `reggie-build.toml` here or above) and
/// selects its images: all of them, or those a change affects.
pub fn select(path: Option<&Path>, selection: &Selection) -> Result<Selected, SelectError> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => config::find(Path::new(".")).ok_or(SelectError::NoConfig)?,
    };
    let config = Config::load(&path)?;
    let (images, report) = match selection {
        Selection::All if config.images.is_empty() => {
            return Err(SelectError::NoImages(config.path));
        }
        Selection::All => (config.images.clone(), None),
        Selection::Affected { base, head } => {
            let report = affected::affected(&affected::Options {
                base: base.clone(),
                head: head.clone(),
                config: Some(config.path.clone()),
                dir: PathBuf::from("."),
                images: Vec::new(),
            })?;
            let images = config
                .images
                .iter()
                .filter(|i| report.images.iter().any(|r| r.affected && r.name == i.name))
                .cloned()
                .collect();
            (images, Some(report))
        }
    };
    Ok(Selected {
        config,
        images,
        affected: report,
    })
}

/// What `{git_sha}`, `{git_short_sha}` and `{branch}` stand for in tag
/// templates; read once for every image.
#[derive(Debug, Clone, Default)]
pub struct TagVars {
    /// The commit checked out (`{git_sha}`, `{git_short_sha}`).
    pub git_sha: Option<String>,
    /// The branch checked out (`{branch}`).
    pub branch: Option<String>,
}

impl TagVars {
    /// [`TagVars::read`] when a template of `images` uses the commit or
    /// the branch; otherwise empty, and no `git` is run.
    pub fn read_for(dir: &Path, images: &[&Image]) -> TagVars {
        let uses = |t: &String| {
            ["{git_sha}", "{git_short_sha}", "{branch}"]
                .iter()
                .any(|v| t.contains(v))
        };
        if images.iter().any(|i| i.tags.iter().any(uses)) {
            TagVars::read(dir)
        } else {
            TagVars::default()
        }
    }

    /// From the repository that holds `dir`. A detached HEAD (CI checks
    /// out commits) takes its branch from `GITHUB_HEAD_REF` (pull
    /// requests) or `GITHUB_REF_NAME`.
    pub fn read(dir: &Path) -> TagVars {
        let repo = crate::git::Repo::discover(dir);
        let git = |args: &[&str]| repo.as_ref().and_then(|r| r.line(args));
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let branch = git(&["symbolic-ref", "--short", "-q", "HEAD"])
            .or_else(|| env("GITHUB_HEAD_REF"))
            .or_else(|| env("GITHUB_REF_NAME"));
        TagVars {
            git_sha: git(&["rev-parse", "HEAD"]),
            branch,
        }
    }
}

/// A branch name as a tag: Docker allows `[A-Za-z0-9_.-]`, 128 at most,
/// not starting with `.` or `-`.
fn tag_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with(['.', '-']) {
        out.remove(0);
    }
    out.truncate(128);
    out
}

/// The image's tags: `REPOSITORY:TEMPLATE` for each template (the
/// repository defaults to the image's name; no templates: `latest`).
/// `context_digest` is asked for only when a template uses it.
pub fn expand_tags(
    image: &Image,
    vars: &TagVars,
    context_digest: &mut dyn FnMut() -> Result<String, String>,
) -> Result<Vec<String>, String> {
    let repository = image
        .repository
        .clone()
        .unwrap_or_else(|| image.name.clone());
    let templates: Vec<String> = if image.tags.is_empty() {
        vec!["latest".into()]
    } else {
        image.tags.clone()
    };
    let mut digest: Option<String> = None;
    let mut tags = Vec::new();
    for t in templates {
        let mut tag = t.clone();
        if tag.contains("{git_sha}") || tag.contains("{git_short_sha}") {
            let sha = vars.git_sha.as_deref().ok_or_else(|| {
                format!("tag \"{t}\" needs the git commit, and this is not a git checkout")
            })?;
            tag = tag
                .replace("{git_sha}", sha)
                .replace("{git_short_sha}", &sha[..sha.len().min(7)]);
        }
        if tag.contains("{branch}") {
            let branch = vars.branch.as_deref().ok_or_else(|| {
                format!("tag \"{t}\" needs a branch, and HEAD is detached (set GITHUB_REF_NAME, or check out a branch)")
            })?;
            tag = tag.replace("{branch}", &tag_safe(branch));
        }
        if tag.contains("{context_digest}") {
            if digest.is_none() {
                digest = Some(context_digest()?);
            }
            let d = digest.as_deref().unwrap_or_default();
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            tag = tag.replace("{context_digest}", &hex[..hex.len().min(12)]);
        }
        tags.push(format!("{repository}:{tag}"));
    }
    Ok(tags)
}

/// The options of one configured image: `shared` with the image's build
/// inputs and tags.
pub fn options_for(
    image: &Image,
    shared: &ImageOptions,
    vars: &TagVars,
) -> Result<ImageOptions, ImageError> {
    let target = Target::from_image(
        image,
        shared.context.builder,
        &PlanOptions {
            target: shared.target.clone(),
            build_args: shared.build_args.clone(),
            platform: shared.platform.clone(),
            ..PlanOptions::default()
        },
    );
    let mut opts = shared.clone();
    opts.context = target.spec.clone();
    opts.build_args = target.plan.build_args.clone();
    opts.target = target.plan.target.clone();
    opts.platform = target.plan.platform.clone();
    let mut context_digest = || {
        crate::build_digest::build_digest(&target)
            .map(|d| d.context)
            .map_err(|e| format!("{{context_digest}}: {e}"))
    };
    opts.tags =
        expand_tags(image, vars, &mut context_digest).map_err(|message| ImageError::Tags {
            image: image.name.clone(),
            message,
        })?;
    Ok(opts)
}

/// [`options_for`] of each image, in order. Images whose tags use
/// `{context_digest}` walk their context for it: those walks run at most
/// `jobs` at a time, on threads, instead of one after the other before
/// any build starts.
pub fn options_all(
    images: &[&Image],
    shared: &ImageOptions,
    vars: &TagVars,
    jobs: usize,
) -> Vec<Result<ImageOptions, ImageError>> {
    let walks = images
        .iter()
        .filter(|i| i.tags.iter().any(|t| t.contains("{context_digest}")))
        .count();
    let threads = jobs.max(1).min(walks);
    if threads <= 1 {
        return images
            .iter()
            .map(|i| options_for(i, shared, vars))
            .collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Result<ImageOptions, ImageError>>>> =
        images.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(image) = images.get(i) else { break };
                let result = options_for(image, shared, vars);
                *done[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            });
        }
    });
    done.into_iter()
        .zip(images)
        .map(|(slot, image)| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| {
                    Err(ImageError::Tags {
                        image: image.name.clone(),
                        message: "the thread expanding its tags stopped".into(),
                    })
                })
        })
        .collect()
}

/// One image's result.
#[derive(Debug)]
pub struct Finished {
    /// The image's name in the config.
    pub name: String,
    /// Its outcome, or why it failed.
    pub result: Result<ImageOutcome, ImageError>,
}

/// Builds (and pushes) every `(name, options)`, at most `jobs` at once,
/// on one daemon connection. Events arrive tagged with the image's name;
/// results come back in the order given. An error only when nothing was
/// built (options refused, the daemon unreachable).
pub async fn images(
    list: &[(String, ImageOptions)],
    jobs: usize,
    on_event: &mut (dyn FnMut(&str, Event) + Send),
) -> Result<Vec<Finished>, ImageError> {
    for (_, opts) in list {
        super::image::check(opts)?;
    }
    let daemon = ship::connect().await?;
    let sink = Mutex::new(on_event);
    let daemon = &daemon;
    let sink = &sink;
    let mut results: Vec<(usize, Finished)> = futures_util::stream::iter(list.iter().enumerate())
        .map(|(i, (name, opts))| async move {
            let mut forward = |e: Event| {
                let mut f = sink.lock().unwrap_or_else(|p| p.into_inner());
                f(name, e)
            };
            let result = image_on(daemon, opts, &mut forward).await;
            (
                i,
                Finished {
                    name: name.clone(),
                    result,
                },
            )
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, f)| f).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextSpec;

    fn image(tags: &[&str], repository: Option<&str>) -> Image {
        let config = crate::config::Config::parse(
            Path::new("/r/reggie-build.toml"),
            "[[image]]\nname = \"api\"\n",
        )
        .unwrap();
        let mut img = config.images[0].clone();
        img.tags = tags.iter().map(|t| t.to_string()).collect();
        img.repository = repository.map(str::to_string);
        img
    }

    #[test]
    fn templates_expand_once_per_tag() {
        let vars = TagVars {
            git_sha: Some("0123456789abcdef".into()),
            branch: Some("feature/Login page".into()),
        };
        let mut calls = 0;
        let mut digest = || {
            calls += 1;
            Ok("sha256:abcdef0123456789abcdef".to_string())
        };
        let tags = expand_tags(
            &image(
                &[
                    "{git_sha}",
                    "{git_short_sha}-{branch}",
                    "c-{context_digest}",
                    "d-{context_digest}",
                    "latest",
                ],
                Some("reg:5000/team/api"),
            ),
            &vars,
            &mut digest,
        )
        .unwrap();
        assert_eq!(
            tags,
            [
                "reg:5000/team/api:0123456789abcdef",
                "reg:5000/team/api:0123456-feature-Login-page",
                "reg:5000/team/api:c-abcdef012345",
                "reg:5000/team/api:d-abcdef012345",
                "reg:5000/team/api:latest",
            ]
        );
        assert_eq!(calls, 1);
        let plain = expand_tags(&image(&[], None), &TagVars::default(), &mut || {
            Err("unused".into())
        })
        .unwrap();
        assert_eq!(plain, ["api:latest"]);
    }

    #[test]
    fn missing_template_values_say_why() {
        let err = expand_tags(
            &image(&["{branch}"], None),
            &TagVars::default(),
            &mut || Err("unused".into()),
        )
        .unwrap_err();
        assert!(
            err.contains("detached") && err.contains("GITHUB_REF_NAME"),
            "{err}"
        );
        let err = expand_tags(
            &image(&["{git_sha}"], None),
            &TagVars::default(),
            &mut || Err("unused".into()),
        )
        .unwrap_err();
        assert!(err.contains("not a git checkout"), "{err}");
        assert_eq!(tag_safe("-.a/b c"), "a-b-c");
    }

    #[test]
    fn git_is_read_only_for_templates_that_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| crate::test_support::git(dir.path(), args);
        git(&["init", "-q", "-b", "main"]);
        git(&["commit", "-q", "--allow-empty", "-m", "x"]);
        let plain = image(&["latest", "v-{context_digest}"], None);
        let vars = TagVars::read_for(dir.path(), &[&plain]);
        assert_eq!((vars.git_sha, vars.branch), (None, None));
        let sha = image(&["{git_short_sha}"], None);
        let vars = TagVars::read_for(dir.path(), &[&plain, &sha]);
        assert_eq!(vars.git_sha.map(|s| s.len()), Some(40));
        assert_eq!(vars.branch.as_deref(), Some("main"));
    }

    #[test]
    fn options_all_keeps_the_order_and_each_image_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for app in ["a", "b", "c"] {
            std::fs::create_dir_all(root.join(app)).unwrap();
            std::fs::write(root.join(app).join("x.txt"), app).unwrap();
            std::fs::write(
                root.join(app).join("Dockerfile"),
                "FROM scratch\nCOPY . /\n",
            )
            .unwrap();
        }
        let mut text = String::new();
        for (name, context) in [("a", "a"), ("missing", "nowhere"), ("b", "b"), ("c", "c")] {
            text.push_str(&format!(
                "[[image]]\nname = \"{name}\"\ncontext = \"{context}\"\ndockerfile = \"{context}/Dockerfile\"\ntags = [\"{{context_digest}}\"]\n\n"
            ));
        }
        let config = crate::config::Config::parse(&root.join("reggie-build.toml"), &text).unwrap();
        let images: Vec<&Image> = config.images.iter().collect();
        let shared = ImageOptions::new(ContextSpec::new(root));
        let one_by_one: Vec<_> = images
            .iter()
            .map(|i| options_for(i, &shared, &TagVars::default()).map(|o| o.tags))
            .collect();
        let together: Vec<_> = options_all(&images, &shared, &TagVars::default(), 3)
            .into_iter()
            .map(|o| o.map(|o| o.tags))
            .collect();
        assert_eq!(together.len(), 4);
        for (a, b) in one_by_one.iter().zip(&together) {
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("{a:?} / {b:?}"),
            }
        }
        assert!(together[1].is_err());
        let tags: Vec<&str> = [0, 2, 3]
            .iter()
            .map(|&i| together[i].as_ref().unwrap()[0].as_str())
            .collect();
        assert!(
            tags[0].starts_with("a:") && tags[1].starts_with("b:") && tags[2].starts_with("c:")
        );
        assert_ne!(tags[0][2..], tags[1][2..]);
    }
}
