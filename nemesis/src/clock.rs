//! Clock faults: where offsets live, how they are written, and how a node's offset is measured.
//!
//! Two mechanisms share one interface ([`ClockMechanism`]):
//! - **libfaketime** (local clusters, any machine): the lifecycle starts the server with the
//!   environment from [`faketime_env`], pointing at the node's offset file
//!   ([`faketime_file`]); the nemesis rewrites that file with a relative offset in seconds
//!   (`+1.500`). Running programs see the change at once (`FAKETIME_NO_CACHE=1`). Statically
//!   linked and Go programs are not affected.
//! - **the real clock** (VMs): `date -s`, refused while NTP or a time daemon runs.
//!
//! Offsets are always measured after a change, never assumed.
use serde::{Deserialize, Serialize};

/// Directory of the per-node offset files and strobe pid files.
pub const CLOCK_DIR: &str = "/var/lib/faultline/clock";

/// Where libfaketime is looked for on a node, first match wins.
pub const LIBFAKETIME_CANDIDATES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The offset file of `node` (named per node because local-cluster nodes share one filesystem).
pub fn faketime_file(node: &str) -> String {
    format!("{CLOCK_DIR}/{node}.faketime")
}

/// Where each node's libfaketime offset file is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OffsetFiles {
    /// [`faketime_file`]`(node)`, under [`CLOCK_DIR`]: right when nodes share a filesystem.
    #[default]
    PerNode,
    /// The same path on every node, for nodes with their own filesystems (e.g. a lifecycle that
    /// keeps the file in a node-private directory such as `/opt/faultline/run/faketime`).
    Fixed(String),
}

impl OffsetFiles {
    pub fn path(&self, node: &str) -> String {
        match self {
            OffsetFiles::PerNode => faketime_file(node),
            OffsetFiles::Fixed(p) => p.clone(),
        }
    }
}

/// The pid file of a running strobe loop on `node`.
pub fn strobe_pidfile(node: &str) -> String {
    format!("{CLOCK_DIR}/{node}.strobe.pid")
}

/// The strobe loop script on `node`.
pub fn strobe_script(node: &str) -> String {
    format!("{CLOCK_DIR}/{node}.strobe.sh")
}

/// Environment for starting `node`'s server under libfaketime. `libfaketime` is the library's
/// path on the node (e.g. the first of [`LIBFAKETIME_CANDIDATES`] that exists).
/// `DONT_FAKE_MONOTONIC=1` matters: without it Rust's `Instant` can go backwards.
pub fn faketime_env(node: &str, libfaketime: &str) -> Vec<(String, String)> {
    [
        ("LD_PRELOAD", libfaketime.to_string()),
        ("FAKETIME_TIMESTAMP_FILE", faketime_file(node)),
        ("FAKETIME_NO_CACHE", "1".to_string()),
        ("DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// How clock offsets are applied on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMechanism {
    /// Rewrite the node's libfaketime offset file.
    #[default]
    Faketime,
    /// Set the node's real clock (`date -s`); needs NTP off.
    RealClock,
}

/// A clock change on a set of nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClockChange {
    /// Jump each listed node by its offset (milliseconds, relative to true time).
    Bump {
        offsets_ms: std::collections::BTreeMap<String, i64>,
    },
    /// Jump the node leading when the change is applied by `offset_ms` (the leader is looked
    /// up then, like an isolate-leader partition's; no leader known makes it `skipped`).
    BumpLeader { offset_ms: i64 },
    /// Flip the listed nodes between offsets `a_ms` and `b_ms` every `period_ms` for
    /// `duration_ms`, then back to zero.
    Strobe {
        nodes: Vec<String>,
        a_ms: i64,
        b_ms: i64,
        period_ms: u64,
        duration_ms: u64,
    },
    /// Every node back to offset zero.
    Reset,
}

/// libfaketime's relative offset text for `ms` milliseconds: `+1.500`, `-0.250`, `+0`.
pub fn format_offset(ms: i64) -> String {
    if ms == 0 {
        return "+0".into();
    }
    let sign = if ms < 0 { '-' } else { '+' };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset file text {text:?} is not a relative offset (+N[.fff][smhdy])")]
pub struct OffsetParseError {
    pub text: String,
}

/// Parses a libfaketime relative offset (`+1.5`, `-2`, `+2h`, `-1d`, empty = 0) to
/// milliseconds. Absolute times (`@2030-01-01 ...`) and speed factors are errors: the nemesis
/// never writes them.
pub fn parse_offset(text: &str) -> Result<i64, OffsetParseError> {
    let err = || OffsetParseError {
        text: text.to_string(),
    };
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1i64, &t[1..]),
        b'-' => (-1i64, &t[1..]),
        _ => return Err(err()),
    };
    let (num, unit_ms) = match rest.chars().last() {
        Some('s') => (&rest[..rest.len() - 1], 1_000f64),
        Some('m') => (&rest[..rest.len() - 1], 60_000f64),
        Some('h') => (&rest[..rest.len() - 1], 3_600_000f64),
        Some('d') => (&rest[..rest.len() - 1], 86_400_000f64),
        Some('y') => (&rest[..rest.len() - 1], 31_536_000_000f64),
        _ => (rest, 1_000f64),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let v: f64 = num.parse().map_err(|_| err())?;
    Ok(sign * (v * unit_ms).round() as i64)
}

/// A measured clock offset: the node's reading minus the controller's clock at the midpoint of
/// the round trip. `uncertainty_ms` is half the round trip.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeasuredOffset {
    pub offset_ms: f64,
    pub uncertainty_ms: f64,
}

/// The offset of a node reading `node_ns` taken between controller times `before_ns` and
/// `after_ns` (all Unix nanoseconds).
pub fn offset_from_reading(before_ns: i128, node_ns: i128, after_ns: i128) -> MeasuredOffset {
    let mid = (before_ns + after_ns) / 2;
    MeasuredOffset {
        offset_ms: (node_ns - mid) as f64 / 1e6,
        uncertainty_ms: (after_ns - before_ns).max(0) as f64 / 2e6,
    }
}

/// The controller's wall clock in Unix nanoseconds.
pub fn controller_now_ns() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_format_as_libfaketime_seconds() {
        for (ms, want) in [
            (0, "+0"),
            (1500, "+1.500"),
            (-250, "-0.250"),
            (-2000, "-2.000"),
            (7, "+0.007"),
            (86_400_000, "+86400.000"),
        ] {
            assert_eq!(format_offset(ms), want);
            assert_eq!(parse_offset(want), Ok(ms), "{want}");
        }
    }

    #[test]
    fn offsets_parse_libfaketime_units() {
        for (text, ms) in [
            ("", 0),
            ("  +0\n", 0),
            ("+1.5", 1500),
            ("-2", -2000),
            ("+2h", 7_200_000),
            ("-1d", -86_400_000),
            ("+30m", 1_800_000),
            ("+10s", 10_000),
        ] {
            assert_eq!(parse_offset(text), Ok(ms), "{text:?}");
        }
        for bad in [
            "@2030-01-01 00:00:00",
            "1.5",
            "+",
            "+1.5x2",
            "+abc",
            "-1..2",
        ] {
            assert!(parse_offset(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn measured_offset_uses_round_trip_midpoint() {
        let m = offset_from_reading(1_000_000_000, 2_510_000_000, 1_020_000_000);
        assert_eq!(m.offset_ms, 1500.0);
        assert_eq!(m.uncertainty_ms, 10.0);
    }

    #[test]
    fn offset_file_layouts() {
        assert_eq!(OffsetFiles::PerNode.path("n2"), faketime_file("n2"));
        let fixed = OffsetFiles::Fixed("/opt/faultline/run/faketime".into());
        assert_eq!(fixed.path("n2"), "/opt/faultline/run/faketime");
    }

    #[test]
    fn per_node_paths_and_env() {
        assert_eq!(faketime_file("n3"), "/var/lib/faultline/clock/n3.faketime");
        let env = faketime_env("n3", LIBFAKETIME_CANDIDATES[0]);
        assert!(env.contains(&("FAKETIME_TIMESTAMP_FILE".into(), faketime_file("n3"))));
        assert!(env.contains(&("DONT_FAKE_MONOTONIC".into(), "1".into())));
        assert!(env.contains(&("FAKETIME_NO_CACHE".into(), "1".into())));
    }
}
