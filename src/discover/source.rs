//! Where a build was declared, and paths as `/`-separated text.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// Where a build was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Dockerfile that no compose file or SST config refers to.
    Dockerfile,
    /// A service of a docker compose file (file relative to the root).
    Compose {
        /// The compose file.
        file: PathBuf,
        /// The line of the service's `build:`, when known.
        line: Option<usize>,
    },
    /// An `sst.aws.Service` or `sst.aws.Task` (file relative to the root).
    Sst {
        /// The SST config file.
        file: PathBuf,
        /// The line of the component.
        line: usize,
    },
    /// An ECS task definition that runs the image (file relative to the
    /// root); where a build's platform comes from, never a build itself.
    Ecs {
        /// The task definition file.
        file: PathBuf,
        /// The line that decides the platform (`cpuArchitecture`).
        line: usize,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dockerfile => f.write_str("dockerfile"),
            Source::Compose {
                file,
                line: Some(line),
            } => {
                write!(f, "compose:{}:{line}", slash(file))
            }
            Source::Compose { file, line: None } => write!(f, "compose:{}", slash(file)),
            Source::Sst { file, line } => write!(f, "sst:{}:{line}", slash(file)),
            Source::Ecs { file, line } => write!(f, "ecs:{}:{line}", slash(file)),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A path with `/` separators.
pub(crate) fn slash(p: &Path) -> String {
    let s = p.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}
