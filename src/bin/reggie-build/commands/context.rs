//! `reggie-build context`: the context as a tar stream.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use reggie_build::context::digest::DigestSink;
use reggie_build::context::tarball::{write_context, EntrySink, Gzip, SkipFile, TarOptions};

use crate::output::print_stdout;
use crate::shared::heading;
use crate::shared::ContextArgs;
use reggie_build::output::{Destination, Existing, OutputError};

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
    #[arg(help_heading = heading::OUTPUT)]
    pub output: PathBuf,
    /// Compress the stream.
    #[arg(long, value_enum, default_value_t = Compress::None)]
    #[arg(help_heading = heading::OUTPUT)]
    pub compress: Compress,
    /// Gzip level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    #[arg(help_heading = heading::OUTPUT)]
    pub level: u32,
    /// Print the context's content digest (paths, modes, link targets and
    /// contents; not mtimes).
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub digest: bool,
    /// Clamp mtimes to SOURCE_DATE_EPOCH (or 0) for a byte-identical archive.
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub reproducible: bool,
}

pub fn run(args: ContextCmdArgs) -> anyhow::Result<i32> {
    let ctx = args.context.spec().resolve()?;
    let mut options = TarOptions::default();
    if let Some(secs) = reggie_build::context::tarball::source_date_epoch()? {
        options.clamp_mtime = Some(secs);
    } else if args.reproducible {
        options.clamp_mtime = Some(0);
    }

    let to_stdout = args.output.as_os_str() == "-";
    let target = Output::open(&args.output, ctx.root())?;
    options.skip_files = target.own_files();
    // Hashing costs as much as archiving: only when asked for.
    let mut digest = args.digest.then(DigestSink::new);
    let result = (|| -> anyhow::Result<()> {
        let out = target.writer()?;
        let sink: &mut dyn EntrySink = match digest.as_mut() {
            Some(d) => d,
            None => &mut (),
        };
        match args.compress {
            // The archive writer buffers; a second buffer would only copy.
            Compress::None => {
                write_context(&ctx, out, &options, sink)?;
            }
            Compress::Gzip => {
                let out = BufWriter::with_capacity(64 * 1024, out);
                let mut gz = Gzip::new(out, args.level);
                let written = write_context(&ctx, &mut gz, &options, sink);
                // The compressor's own error (a full disk, a closed stdout)
                // comes first: the archive writer only saw it stop.
                gz.finish().context("writing the compressed archive")?;
                written?;
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
    if let Some(d) = digest {
        let d = d.finish();
        if to_stdout {
            eprintln!("{d}");
        } else {
            print_stdout(&format!("{d}\n"))?;
        }
    }
    Ok(0)
}

/// Where the archive goes. A regular file is written under a temporary
/// name beside it and renamed at the end, so a failure leaves nothing
/// half-written.
enum Output {
    Stdout,
    /// A device or pipe such as /dev/null: written in place (through a
    /// link only outside the repository: `/dev/stdout`).
    Special {
        path: PathBuf,
        follow: bool,
    },
    File {
        /// Created by [`Output::open`] (exclusively, never through a link),
        /// taken by [`Output::writer`].
        file: std::cell::RefCell<Option<File>>,
        /// The temporary's path, for the signal handler and `own_files`.
        tmp: PathBuf,
        tmp_name: std::ffi::OsString,
        dest: Destination,
    },
}

impl Output {
    /// Opens `path` by `reggie_build::output`'s rule, with the context's
    /// `root` as one more directory in which no link is followed.
    fn open(path: &Path, root: &Path) -> anyhow::Result<Output> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout);
        }
        let dest = Destination::open(path, &[root], false)?;
        match dest.existing() {
            Ok(Existing::Special) => {
                return Ok(Output::Special {
                    path: path.to_path_buf(),
                    follow: false,
                })
            }
            // `/dev/stdout` and its kind: the system's links, to a pipe
            // or a terminal.
            Err(OutputError::DestinationIsLink(_))
                if !dest.inside() && std::fs::metadata(path).is_ok_and(|m| !m.is_file()) =>
            {
                return Ok(Output::Special {
                    path: path.to_path_buf(),
                    follow: true,
                })
            }
            Ok(Existing::Dir) => anyhow::bail!(
                "{} is a directory; give a file name for the archive",
                reggie_build::text::show_path(path)
            ),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let (file, tmp_name) = dest.create_temp()?;
        let tmp = path.with_file_name(&tmp_name);
        cleanup::arm(&tmp);
        Ok(Output::File {
            file: std::cell::RefCell::new(Some(file)),
            tmp,
            tmp_name,
            dest,
        })
    }

    /// The files the archive must not contain: the output itself (and the
    /// file it replaces), wherever they are.
    fn own_files(&self) -> Vec<SkipFile> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let mut ids = Vec::new();
        let mut add = |path: &Path, meta: std::io::Result<std::fs::Metadata>| {
            if let (Ok(m), Some(name)) = (meta, path.file_name()) {
                if m.is_file() {
                    ids.push(SkipFile {
                        name: name.as_bytes().to_vec(),
                        dev: m.dev(),
                        ino: m.ino(),
                    });
                }
            }
        };
        match self {
            Output::Stdout => {
                // `context . -o - > archive.tar` inside the context: its
                // name from /proc.
                if let Ok(path) = std::fs::read_link("/proc/self/fd/1") {
                    add(&path, std::fs::metadata("/proc/self/fd/1"));
                }
            }
            Output::Special { .. } => {}
            Output::File {
                file, tmp, dest, ..
            } => {
                if let Some(f) = file.borrow().as_ref() {
                    add(tmp, f.metadata());
                }
                add(dest.path(), std::fs::symlink_metadata(dest.path()));
            }
        }
        ids
    }

    fn writer(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(match self {
            Output::Stdout => Box::new(std::io::stdout()),
            Output::Special { path, follow } => Box::new({
                use std::os::unix::fs::OpenOptionsExt;
                let nofollow = if *follow { 0 } else { libc::O_NOFOLLOW };
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nofollow)
                    .open(path)
                    .with_context(|| format!("cannot open {} for writing", path.display()))?
            }),
            Output::File { file, .. } => Box::new(
                file.borrow_mut()
                    .take()
                    .context("the output is open once")?,
            ),
        })
    }

    fn commit(&self) -> anyhow::Result<()> {
        if let Output::File { tmp_name, dest, .. } = self {
            let renamed = dest.commit(tmp_name);
            cleanup::disarm();
            if let Err(e) = renamed {
                dest.remove_temp(tmp_name);
                return Err(e).with_context(|| {
                    format!("cannot move the archive to {}", dest.path().display())
                });
            }
        }
        Ok(())
    }

    fn discard(&self) {
        if let Output::File { tmp_name, dest, .. } = self {
            dest.remove_temp(tmp_name);
            cleanup::disarm();
        }
    }
}

/// Removes the temporary archive when SIGINT or SIGTERM ends the run
/// (it can be hundreds of MB): the handler unlinks it and exits 130 or
/// 143, as the shell reports a process killed by the signal.
mod cleanup {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicPtr, Ordering};

    static TEMP: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

    extern "C" fn on_signal(sig: libc::c_int) {
        let path = TEMP.swap(std::ptr::null_mut(), Ordering::SeqCst);
        // Only async-signal-safe calls: unlink and _exit.
        unsafe {
            if !path.is_null() {
                libc::unlink(path);
            }
            libc::_exit(128 + sig);
        }
    }

    /// Installs the handlers for the temporary file `path`.
    pub fn arm(path: &Path) {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return;
        };
        // Leaked on purpose: the handler may read it until the process ends.
        let old = TEMP.swap(c.into_raw(), Ordering::SeqCst);
        if !old.is_null() {
            drop(unsafe { CString::from_raw(old) });
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    }

    /// The file is renamed or removed: a signal now just ends the run.
    pub fn disarm() {
        TEMP.swap(std::ptr::null_mut(), Ordering::SeqCst);
    }
}
