//! Several BuildKit builders for one run (`--buildkit-addr` repeated, or
//! `[[builder]]` in reggie-build.toml): each image goes to one builder,
//! the same one from run to run so that its local cache serves the
//! rebuild, unless that builder is busy or down.
//!
//! * **Which builder**: rendezvous (highest random weight) hashing of the
//!   image's name over the builders' addresses: of `sha256(addr, name)`
//!   the highest wins. The same on every run and every machine, and adding
//!   or removing a builder moves only the images that preferred it (a hash
//!   modulo the number of builders would move most of them).
//! * **Busy**: each builder takes `ceil(jobs / builders)` builds at once;
//!   an image whose builder is full goes to the least-loaded one (ties: in
//!   the image's own order of preference).
//! * **Down**: a builder that cannot be reached before the build starts is
//!   left out for the rest of the run, and the image goes to the
//!   least-loaded of the others. One that goes away during a build fails
//!   that image (its steps may have run there; the next run builds it
//!   again) and is left out too; the other images go on.
//!
//! Registry caches (`--cache-to`/`--cache-from type=registry`) are shared
//! by every builder: an image that moves imports what another exported.
//!
//! ```
//! use reggie_build::ops::pool::Pool;
//! use reggie_build::ship::{Remote, TlsOptions};
//!
//! let remote = |a: &str| Remote::new(a, TlsOptions::default()).unwrap();
//! let pool = Pool::new(vec![remote("tcp://b0:1234"), remote("tcp://b1:1234")], 4);
//! // The same image prefers the same builder, run after run.
//! assert_eq!(pool.preferred("reggie-api"), pool.preferred("reggie-api"));
//! ```

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::ship::error::ControlError;
use crate::ship::{Event, Remote, ShipError};

use super::image::{image, ImageError, ImageOptions, ImageOutcome};

/// Builders shared by the images of a run.
#[derive(Debug)]
pub struct Pool {
    builders: Vec<Remote>,
    addrs: Vec<String>,
    per_builder: usize,
    loads: Mutex<Vec<Load>>,
}

/// What a builder is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Load {
    /// Builds running on it.
    running: usize,
    /// Why it is left out, once it was found down.
    down: Option<String>,
}

/// An image's result and the builder it ran on (none when no builder was
/// up to take it).
#[derive(Debug)]
pub struct Placed {
    /// The builder's address.
    pub builder: Option<String>,
    /// The image's outcome, or why it failed.
    pub result: Result<ImageOutcome, ImageError>,
}

impl Pool {
    /// A pool of `builders` for at most `jobs` builds at a time.
    pub fn new(builders: Vec<Remote>, jobs: usize) -> Pool {
        let n = builders.len().max(1);
        Pool {
            addrs: builders.iter().map(|b| b.addr.to_string()).collect(),
            per_builder: jobs.max(1).div_ceil(n),
            loads: Mutex::new(vec![Load::default(); builders.len()]),
            builders,
        }
    }

    /// The builders' addresses, in the order given.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// The address of the builder `key` (an image's name) prefers.
    pub fn preferred(&self, key: &str) -> Option<&str> {
        preference(key, &self.addrs)
            .first()
            .map(|&i| self.addrs[i].as_str())
    }

    fn loads(&self) -> std::sync::MutexGuard<'_, Vec<Load>> {
        self.loads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place on the builder for `key`: its index and why it.
    fn acquire(&self, key: &str) -> Option<(usize, String)> {
        let order = preference(key, &self.addrs);
        let mut loads = self.loads();
        let (i, reason) = choose(&order, &loads, self.per_builder, &self.addrs)?;
        loads[i].running += 1;
        Some((i, reason))
    }

    fn release(&self, i: usize) {
        let mut loads = self.loads();
        loads[i].running = loads[i].running.saturating_sub(1);
    }

    fn mark_down(&self, i: usize, reason: &str) {
        let mut loads = self.loads();
        if loads[i].down.is_none() {
            loads[i].down = Some(reason.to_string());
        }
    }

    /// Every builder that is down, and why, for the error when none is up.
    fn describe_down(&self) -> String {
        self.loads()
            .iter()
            .zip(&self.addrs)
            .filter_map(|(l, a)| l.down.as_ref().map(|why| format!("{a} ({why})")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The builders in the order `key` prefers them: by `sha256(addr \n key)`,
/// highest first.
fn preference(key: &str, addrs: &[String]) -> Vec<usize> {
    let weight = |addr: &str| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(addr.as_bytes());
        h.update(b"\n");
        h.update(key.as_bytes());
        h.finalize().into()
    };
    let mut order: Vec<(usize, [u8; 32])> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (i, weight(a)))
        .collect();
    order.sort_by_key(|(_, w)| std::cmp::Reverse(*w));
    order.into_iter().map(|(i, _)| i).collect()
}

/// The builder for an image whose preference is `order`: the first one if
/// it is up and has room, else the least-loaded builder that is up (ties
/// in `order`). The reason names the preferred builder when it is not
/// the one chosen.
fn choose(
    order: &[usize],
    loads: &[Load],
    per_builder: usize,
    addrs: &[String],
) -> Option<(usize, String)> {
    let &first = order.first()?;
    let own = &loads[first];
    if own.down.is_none() && own.running < per_builder {
        return Some((first, "preferred".into()));
    }
    let (i, _) = order
        .iter()
        .map(|&i| (i, &loads[i]))
        .filter(|(_, l)| l.down.is_none())
        .min_by_key(|(_, l)| l.running)?;
    if i == first {
        // Every builder that is up is as busy as the preferred one.
        return Some((first, "preferred".into()));
    }
    let why = match own.down {
        Some(_) => "down",
        None => "busy",
    };
    Some((i, format!("{} is {why}", addrs[first])))
}

/// What an image is known by to the pool: the repository of its first
/// tag (`registry/team/api` of `registry/team/api:v1`), the same whichever
/// tag a run gives it and whether it is built alone or with `--all`;
/// `fallback` (its name, its context) when it has no tag.
pub fn key(opts: &ImageOptions, fallback: &str) -> String {
    match opts.tags.first() {
        Some(tag) => crate::reference::split_tag(tag).0.to_string(),
        None => fallback.to_string(),
    }
}

/// Whether `e` says the builder could not be reached (`Some(false)`) or
/// went away during the build (`Some(true)`), and what the connection said.
fn unreachable(e: &ImageError) -> Option<(bool, String)> {
    match e {
        ImageError::Build(ShipError::Control(
            ControlError::Unreachable { reason, .. } | ControlError::Tls { reason, .. },
        )) => Some((false, reason.clone())),
        ImageError::Build(ShipError::Control(ControlError::Lost { reason, .. })) => {
            Some((true, reason.clone()))
        }
        _ => None,
    }
}

/// Builds `opts` (the image `key`) on a builder of `pool`: another one when
/// that builder turns out to be down before the build starts.
pub async fn build(
    pool: &Pool,
    key: &str,
    opts: &ImageOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Placed {
    loop {
        let Some((i, reason)) = pool.acquire(key) else {
            return Placed {
                builder: None,
                result: Err(ImageError::NoBuilder {
                    down: pool.describe_down(),
                }),
            };
        };
        let addr = pool.addrs[i].clone();
        on_event(Event::Builder {
            addr: addr.clone(),
            reason,
        });
        let mut opts = opts.clone();
        opts.remote = Some(pool.builders[i].clone());
        // The build reports its context once the builder answered.
        let mut started = false;
        let mut forward = |e: Event| {
            started |= matches!(e, Event::Context { .. });
            on_event(e)
        };
        let result = image(&opts, &mut forward).await;
        pool.release(i);
        let Some((lost, why)) = result.as_ref().err().and_then(unreachable) else {
            return Placed {
                builder: Some(addr),
                result,
            };
        };
        pool.mark_down(i, &why);
        if lost || started {
            return Placed {
                builder: Some(addr.clone()),
                result: Err(ImageError::BuilderLost { addr, reason: why }),
            };
        }
        on_event(Event::Warning {
            message: format!(
                "the builder at {addr} is down ({why}); it takes no more images in this run"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tcp://b{i}:1234")).collect()
    }

    #[test]
    fn preference_is_stable_and_moves_little_when_builders_change() {
        let three = addrs(3);
        let names: Vec<String> = (0..300).map(|i| format!("image-{i}")).collect();
        let first = |a: &[String], n: &str| a[preference(n, a)[0]].clone();
        // Pinned: the order depends on nothing but the names.
        assert_eq!(
            preference("reggie-api", &three),
            preference("reggie-api", &three)
        );
        let mut per = [0usize; 3];
        for n in &names {
            per[preference(n, &three)[0]] += 1;
        }
        assert!(per.iter().all(|&c| c > 60), "spread: {per:?}");
        // Without b2, only the images that preferred b2 move.
        let two = addrs(2);
        for n in &names {
            let before = first(&three, n);
            if before != three[2] {
                assert_eq!(first(&two, n), before, "{n}");
            }
        }
        // Every builder appears once in each order.
        let mut order = preference("x", &three);
        order.sort();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn busy_or_down_builders_hand_the_image_to_the_least_loaded() {
        let a = addrs(3);
        let load = |running, down: bool| Load {
            running,
            down: down.then(|| "connection refused".to_string()),
        };
        let order = [1, 0, 2];
        type Case<'a> = (&'a [Load], Option<(usize, &'a str)>);
        let cases: &[Case] = &[
            (
                &[load(0, false), load(0, false), load(0, false)],
                Some((1, "preferred")),
            ),
            (
                &[load(1, false), load(2, false), load(0, false)],
                Some((2, "tcp://b1:1234 is busy")),
            ),
            // Ties go in the image's order: b0 before b2.
            (
                &[load(0, false), load(2, false), load(0, false)],
                Some((0, "tcp://b1:1234 is busy")),
            ),
            (
                &[load(1, false), load(0, true), load(0, false)],
                Some((2, "tcp://b1:1234 is down")),
            ),
            // All full: the preferred one still, rather than a busier one.
            (
                &[load(2, false), load(2, false), load(3, false)],
                Some((1, "preferred")),
            ),
            (&[load(0, true), load(0, true), load(0, true)], None),
        ];
        for (loads, want) in cases {
            let got = choose(&order, loads, 2, &a);
            assert_eq!(
                got.as_ref().map(|(i, r)| (*i, r.as_str())),
                *want,
                "{loads:?}"
            );
        }
    }

    #[test]
    fn places_are_taken_and_given_back() {
        let remote = |a: &str| Remote::new(a, Default::default()).unwrap();
        let pool = Pool::new(vec![remote("tcp://b0:1"), remote("tcp://b1:1")], 2);
        let (first, why) = pool.acquire("api").unwrap();
        assert_eq!(why, "preferred");
        assert_eq!(Some(pool.addrs[first].as_str()), pool.preferred("api"));
        // One place each (2 jobs over 2 builders): the second build of the
        // same image goes to the other builder.
        let (second, why) = pool.acquire("api").unwrap();
        assert_ne!(first, second);
        assert!(why.ends_with("is busy"), "{why}");
        pool.release(first);
        assert_eq!(pool.acquire("api").unwrap().0, first);
        pool.mark_down(second, "connection refused");
        pool.mark_down(first, "gone");
        assert!(pool.acquire("web").is_none());
        let want = match first {
            0 => "tcp://b0:1 (gone); tcp://b1:1 (connection refused)",
            _ => "tcp://b0:1 (connection refused); tcp://b1:1 (gone)",
        };
        assert_eq!(pool.describe_down(), want);
    }
}
