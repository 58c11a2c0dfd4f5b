//! When the wall clock can be trusted enough to stamp samples.
//!
//! A Raspberry Pi has no battery-backed clock: it boots at 1970, or at the time
//! `fake-hwclock` saved last, and NTP steps the clock later, sometimes minutes after boot.
//! Samples stamped before that step are wrong, and a receiver refuses or misplaces them. So
//! until the clock is plausible, scrapes wait, and the status page and log say why.
//!
//! Plausible means: not before this build ([`BUILD_EPOCH_MS`], a clock before it is
//! certainly wrong), and not more than [`WAL_SLACK`] before the newest sample already in the
//! WAL (the clock went back since those were taken: a `fake-hwclock` restore or 1970). When
//! the system says its clock is synchronized (`adjtimex`, or timesyncd's flag file), the WAL
//! check is skipped: a synchronized clock is right even if the WAL holds samples from a clock
//! that ran ahead. The sync status can only shorten the wait, never cause one: most systems
//! have no way to report it, and an unsynchronized clock that passes both checks is fine.
//!
//! The policy decides once: after the first plausible reading, later steps (backward or
//! forward) are the time service's corrections and are followed, since the WAL stores samples
//! in append order whatever their timestamps.
//!
//! Sans-IO: [`assess`] takes the readings and returns the verdict; callers read the clocks.

use std::time::Duration;

/// The build time of this crate in ms since the epoch (0 when unknown); see `build.rs`.
pub const BUILD_EPOCH_MS: i64 = parse_epoch(env!("MAGPIE_BUILD_EPOCH")).saturating_mul(1000);

/// How far before the newest WAL sample the clock may be and still count as right: a
/// little skew between the last shutdown's clock and this boot's, not an hour-old
/// `fake-hwclock` save.
pub const WAL_SLACK: Duration = Duration::from_secs(10 * 60);

const fn parse_epoch(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v: i64 = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return 0;
        }
        v = v * 10 + (b[i] - b'0') as i64;
        i += 1;
    }
    v
}

/// What the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readings {
    /// The wall clock, ms since the epoch.
    pub now_ms: i64,
    /// The lower bound from the build, ms since the epoch (0: none).
    pub build_ms: i64,
    /// The newest sample timestamp in the WAL, if it holds any.
    pub newest_wal_ms: Option<i64>,
    /// Whether the system reports its clock synchronized; `None` when it cannot tell.
    pub synced: Option<bool>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Samples may be stamped with this clock.
    Plausible,
    /// The clock reads before this build.
    BeforeBuild {
        /// The wall clock, ms.
        now_ms: i64,
        /// The build time, ms.
        build_ms: i64,
    },
    /// The clock reads well before the newest sample already in the WAL.
    BeforeWal {
        /// The wall clock, ms.
        now_ms: i64,
        /// The newest WAL sample, ms.
        newest_ms: i64,
    },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plausible => f.write_str("the clock is plausible"),
            Self::BeforeBuild { now_ms, build_ms } => write!(
                f,
                "waiting for the clock: it reads {} s since the epoch, before this build ({} s); scrapes start once it is set (NTP)",
                now_ms / 1000,
                build_ms / 1000
            ),
            Self::BeforeWal { now_ms, newest_ms } => write!(
                f,
                "waiting for the clock: it reads {} s since the epoch, {} s before the newest sample in the WAL ({} s); scrapes start once it is set (NTP) or reported synchronized",
                now_ms / 1000,
                (newest_ms - now_ms) / 1000,
                newest_ms / 1000
            ),
        }
    }
}

/// Whether samples may be stamped with `r.now_ms`.
#[must_use]
pub fn assess(r: &Readings) -> Verdict {
    if r.now_ms < r.build_ms {
        return Verdict::BeforeBuild {
            now_ms: r.now_ms,
            build_ms: r.build_ms,
        };
    }
    let slack = i64::try_from(WAL_SLACK.as_millis()).unwrap_or(i64::MAX);
    match r.newest_wal_ms {
        Some(newest) if r.synced != Some(true) && r.now_ms < newest.saturating_sub(slack) => {
            Verdict::BeforeWal {
                now_ms: r.now_ms,
                newest_ms: newest,
            }
        }
        _ => Verdict::Plausible,
    }
}

/// Decides once: answers [`assess`] until the first plausible reading, then plausible for
/// good.
#[derive(Debug, Default)]
pub struct Gate {
    open: bool,
}

impl Gate {
    /// Whether a plausible reading was seen.
    #[must_use]
    pub const fn is_open(&self) -> bool {
        self.open
    }

    /// The verdict for `r`, latching once plausible.
    pub fn check(&mut self, r: &Readings) -> Verdict {
        if self.open {
            return Verdict::Plausible;
        }
        let v = assess(r);
        self.open = v == Verdict::Plausible;
        v
    }
}

/// timesyncd creates this file once it synchronized the clock (systemd 239 and later).
const TIMESYNCD_FLAG: &str = "/run/systemd/timesync/synchronized";

/// Whether the system reports its clock synchronized: `Some(true)` when timesyncd's flag file
/// exists, else `None` (unknown; chrony and ntpd leave no such file, and the kernel's own
/// flag would need `adjtimex`). Cheap: one `stat`, and only asked while the gate is shut.
#[must_use]
pub fn system_synced() -> Option<bool> {
    std::path::Path::new(TIMESYNCD_FLAG)
        .exists()
        .then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2026-11-01, a build date.
    const BUILD: i64 = 1_793_491_200_000;

    fn r(now_ms: i64, newest: Option<i64>, synced: Option<bool>) -> Readings {
        Readings {
            now_ms,
            build_ms: BUILD,
            newest_wal_ms: newest,
            synced,
        }
    }

    #[test]
    fn the_build_date_is_embedded() {
        let built: i64 = env!("MAGPIE_BUILD_EPOCH").parse().unwrap();
        assert!(built > 1_700_000_000, "{built}");
        assert_eq!(BUILD_EPOCH_MS, built * 1000);
        assert_eq!(parse_epoch("1793491200"), 1_793_491_200);
        assert_eq!(parse_epoch("x"), 0);
    }

    #[test]
    fn a_clock_before_the_build_waits_whatever_the_sync_flag_says() {
        for synced in [None, Some(false), Some(true)] {
            assert!(matches!(
                assess(&r(0, None, synced)),
                Verdict::BeforeBuild { now_ms: 0, .. }
            ));
        }
        let v = assess(&r(BUILD - 1, None, None));
        assert!(v.to_string().contains("before this build"), "{v}");
        assert_eq!(assess(&r(BUILD, None, None)), Verdict::Plausible);
    }

    #[test]
    fn a_clock_well_behind_the_wal_waits_unless_synchronized() {
        let newest = BUILD + 48 * HOUR;
        // fake-hwclock restored an hourly save: an hour behind what the WAL already holds.
        let stale = newest - HOUR;
        let v = assess(&r(stale, Some(newest), None));
        assert_eq!(
            v,
            Verdict::BeforeWal {
                now_ms: stale,
                newest_ms: newest
            }
        );
        assert!(
            v.to_string().contains("3600 s before the newest sample"),
            "{v}"
        );
        assert_eq!(assess(&r(stale, Some(newest), Some(false))), v);
        // The system says it is synchronized: that shortens the wait.
        assert_eq!(
            assess(&r(stale, Some(newest), Some(true))),
            Verdict::Plausible
        );
        // A little skew is not a wrong clock.
        assert_eq!(
            assess(&r(newest - 60_000, Some(newest), None)),
            Verdict::Plausible
        );
        assert_eq!(
            assess(&r(newest + HOUR, Some(newest), None)),
            Verdict::Plausible
        );
    }

    #[test]
    fn the_gate_decides_once_and_then_follows_steps_both_ways() {
        let mut g = Gate::default();
        assert!(matches!(
            g.check(&r(0, None, None)),
            Verdict::BeforeBuild { .. }
        ));
        let now = BUILD + 100 * HOUR;
        assert_eq!(g.check(&r(now, None, None)), Verdict::Plausible);
        // NTP steps back an hour, then forward a day: scrapes go on.
        assert_eq!(g.check(&r(now - HOUR, Some(now), None)), Verdict::Plausible);
        assert_eq!(
            g.check(&r(now + 24 * HOUR, Some(now), None)),
            Verdict::Plausible
        );
    }
}
