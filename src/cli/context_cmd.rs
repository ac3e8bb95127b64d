//! `reggie-build context`: the context as a tar stream.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use reggie_build::context::digest::DigestSink;
use reggie_build::context::tarball::{write_context, TarOptions};

use super::ContextArgs;

/// Compression of the written stream.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Compress {
    None,
    Gzip,
}

/// Arguments of `reggie-build context`.
#[derive(Debug, Args)]
pub struct ContextCmdArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Output file, or `-` for stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE|-")]
    pub output: PathBuf,
    /// Compress the stream.
    #[arg(long, value_enum, default_value_t = Compress::None)]
    pub compress: Compress,
    /// Gzip level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: u32,
    /// Print the context's content digest (paths, modes, link targets and
    /// contents; not mtimes).
    #[arg(long)]
    pub digest: bool,
    /// Clamp mtimes to SOURCE_DATE_EPOCH (or 0) for a byte-identical archive.
    #[arg(long)]
    pub reproducible: bool,
}

pub fn run(args: ContextCmdArgs) -> anyhow::Result<i32> {
    let ctx = args.context.spec().resolve()?;
    let mut options = TarOptions::default();
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    if let Some(epoch) = epoch.as_deref().filter(|s| !s.is_empty()) {
        let secs: i64 = epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={epoch:?} is not a number of seconds"))?;
        options.clamp_mtime = Some(secs);
    } else if args.reproducible {
        options.clamp_mtime = Some(0);
    }

    let to_stdout = args.output.as_os_str() == "-";
    let target = Output::open(&args.output)?;
    let mut digest = DigestSink::new();
    let result = (|| -> anyhow::Result<()> {
        let sink_writer = BufWriter::with_capacity(256 * 1024, target.writer()?);
        match args.compress {
            Compress::None => {
                let mut w = sink_writer;
                write_context(&ctx, &mut w, &options, &mut digest)?;
                w.flush().context("writing the archive")?;
            }
            Compress::Gzip => {
                let level = flate2::Compression::new(args.level);
                let mut gz = flate2::write::GzEncoder::new(sink_writer, level);
                write_context(&ctx, &mut gz, &options, &mut digest)?;
                gz.finish()
                    .and_then(|mut w| w.flush())
                    .context("writing the archive")?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => target.commit()?,
        Err(e) => {
            target.discard();
            return Err(e);
        }
    }
    if args.digest {
        let d = digest.finish();
        if to_stdout {
            eprintln!("{d}");
        } else {
            println!("{d}");
        }
    }
    Ok(0)
}

/// Where the archive goes. A regular file is written under a temporary
/// name and renamed at the end, so a failure leaves nothing half-written.
enum Output {
    Stdout,
    /// A device or pipe such as /dev/null: written in place.
    Special(PathBuf),
    File {
        tmp: PathBuf,
        dest: PathBuf,
    },
}

impl Output {
    fn open(path: &Path) -> anyhow::Result<Output> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout);
        }
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                return Ok(Output::Special(path.to_path_buf()));
            }
        }
        let name = path
            .file_name()
            .with_context(|| format!("{} is not a file name", path.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        Ok(Output::File {
            tmp: path.with_file_name(tmp_name),
            dest: path.to_path_buf(),
        })
    }

    fn writer(&self) -> anyhow::Result<Box<dyn Write>> {
        Ok(match self {
            Output::Stdout => Box::new(std::io::stdout().lock()),
            Output::Special(p) => Box::new(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("cannot open {} for writing", p.display()))?,
            ),
            Output::File { tmp, .. } => Box::new(
                File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
            ),
        })
    }

    fn commit(&self) -> anyhow::Result<()> {
        if let Output::File { tmp, dest } = self {
            std::fs::rename(tmp, dest)
                .with_context(|| format!("cannot move the archive to {}", dest.display()))?;
        }
        Ok(())
    }

    fn discard(&self) {
        if let Output::File { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
