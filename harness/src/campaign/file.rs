//! Campaign files: a name, where the nodes are, default run options, and entries whose fields
//! may be lists that multiply into a matrix of runs, each with its expected outcome.
//!
//! ```yaml
//! name: smoke                  # optional, default: the file's stem
//! nodes: 5                     # local cluster size (default 5), or  inventory: FILE
//! defaults: { time_limit: 20, nemesis_interval: 5 }   # any `faultline run --config` key
//! entries:
//!   - target: [raft, paxos]    # a list multiplies; a scalar is one value
//!     workload: register
//!     nemesis: ["partition,kill", none]
//!     seeds: [1, 2]
//!     expect: valid            # or: invalid, or: {invalid: [nonlinearizable]}
//! ```
//! Everything is checked before anything runs (bug names and read modes against each target,
//! duplicate entry ids); every error names `FILE:LINE:COLUMN` and the entry.
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use results::campaign::Expectation;
use serde::de::value::{
    BoolDeserializer, F64Deserializer, I64Deserializer, MapAccessDeserializer, StrDeserializer,
    U64Deserializer,
};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use workloads::gen::WorkloadKind;

use crate::run::Concurrency;
use crate::spec::{yaml_error, ConcurrencyVisitor, MixVisitor, RunOptions, RunSpec, TargetName};

/// The local cluster size when a campaign gives neither `nodes` nor `inventory`.
pub const DEFAULT_NODES: usize = 5;

/// A campaign file, checked and expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// A valid test name (one path component).
    pub name: String,
    /// The file as given.
    pub file: PathBuf,
    /// The local cluster's size, if the file gives one.
    pub nodes: Option<usize>,
    /// The file's inventory, relative paths resolved against the file's directory.
    pub inventory: Option<PathBuf>,
    /// In file order; within an entry, the last field listed varies fastest (seeds innermost).
    pub entries: Vec<Entry>,
}

/// One run of a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stable across campaign runs: `raft-register-partition+kill-bug=stale-read-s3`.
    pub id: String,
    pub options: RunOptions,
    pub expect: Expectation,
}

impl Campaign {
    /// Reads and checks a campaign file; the error is one line naming `FILE:LINE:COLUMN`.
    pub fn load(file: &Path) -> Result<Campaign, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        Campaign::parse(&text, file)
    }

    /// Parses and checks campaign text; `file` names the place in errors, gives the default
    /// name and anchors a relative `inventory`.
    pub fn parse(text: &str, file: &Path) -> Result<Campaign, String> {
        let header: Header = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, &e))?;
        if header.defaults.nodes.is_some() {
            return Err(format!(
                "{}: defaults: `nodes` belongs at the top level of a campaign",
                file.display()
            ));
        }
        if header.nodes.is_some() && header.inventory.is_some() {
            return Err(format!(
                "{}: give `nodes` (a local cluster) or `inventory`, not both",
                file.display()
            ));
        }
        let entries = Document {
            defaults: &header.defaults,
        }
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| yaml_error(file, &e))?;
        if entries.is_empty() {
            return Err(format!("{}: `entries` is empty", file.display()));
        }
        let name = match header.name {
            Some(n) => n,
            None => {
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !results::store::valid_test_name(&stem) {
                    return Err(format!(
                        "{}: the file name is not a valid campaign name; give `name:`",
                        file.display()
                    ));
                }
                stem
            }
        };
        let inventory = header.inventory.map(|p| match file.parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        });
        Ok(Campaign {
            name,
            file: file.to_path_buf(),
            nodes: header.nodes,
            inventory,
            entries,
        })
    }

    /// The entries `--only` selects: an id containing a pattern, or matching it where the
    /// pattern has `*` wildcards. No patterns: every entry.
    pub fn select(&self, patterns: &[String]) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| patterns.is_empty() || patterns.iter().any(|p| matches(p, &e.id)))
            .collect()
    }
}

/// `pattern` with `*` wildcards matches all of `id`; without, it matches a part of it.
pub fn matches(pattern: &str, id: &str) -> bool {
    if !pattern.contains('*') {
        return id.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || id.len() < first.len() + last.len() || !id.ends_with(last) {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The top level, first pass: everything but the entries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    #[serde(default, deserialize_with = "campaign_name")]
    name: Option<String>,
    #[serde(default, deserialize_with = "node_count")]
    nodes: Option<usize>,
    inventory: Option<PathBuf>,
    #[serde(default)]
    defaults: RunSpec,
    #[allow(dead_code)]
    entries: IgnoredAny,
}

fn campaign_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Name;
    impl Visitor<'_> for Name {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a campaign name")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if results::store::valid_test_name(v) {
                Ok(Some(v.to_string()))
            } else {
                Err(E::custom(format!(
                    "{v:?} is not a valid name: use letters, digits, '-', '_' and '.', not starting with '.'"
                )))
            }
        }
    }
    d.deserialize_str(Name)
}

fn node_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct Count;
    impl Visitor<'_> for Count {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number of local nodes, 1 to 200")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            match usize::try_from(v) {
                Ok(n) if (1..=200).contains(&n) => Ok(Some(n)),
                _ => Err(E::custom(format!("{v} nodes: expected 1 to 200"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{v} nodes: expected 1 to 200")))
        }
    }
    d.deserialize_any(Count)
}

/// The top level, second pass: the entries, checked and expanded with the defaults known.
struct Document<'a> {
    defaults: &'a RunSpec,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Vec<Entry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Vec<Entry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a campaign")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                entries = map.next_value_seed(Entries {
                    defaults: self.defaults,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(entries)
    }
}

struct Entries<'a> {
    defaults: &'a RunSpec,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = Vec<Entry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = Vec<Entry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
        let mut ids = HashMap::new();
        let mut out = Vec::new();
        let mut index = 0;
        while let Some(expanded) = seq.next_element_seed(EntrySeed {
            defaults: self.defaults,
            index,
            ids: &mut ids,
        })? {
            out.extend(expanded);
            index += 1;
        }
        Ok(out)
    }
}

/// One entry of the file: parsed inside its own mapping, so that an error found while
/// checking it carries the entry's line.
struct EntrySeed<'a> {
    defaults: &'a RunSpec,
    index: usize,
    /// Every id so far, with the index of the entry that produced it.
    ids: &'a mut HashMap<String, usize>,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Vec<Entry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Vec<Entry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an entry (a mapping with target, workload, nemesis, seeds, expect, ...)")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<Entry>, A::Error> {
        let raw = RawEntry::deserialize(MapAccessDeserializer::new(map))?;
        let entries = raw.expand(self.defaults).map_err(de::Error::custom)?;
        for e in &entries {
            if let Some(prev) = self.ids.insert(e.id.clone(), self.index) {
                let whence = if prev == self.index {
                    "twice by this entry".to_string()
                } else {
                    format!("also by entries[{prev}]")
                };
                return Err(de::Error::custom(format!(
                    "entry id {} is produced {whence}; entries must differ in target, workload, nemesis, nemesis schedule, bug, read mode, server args or seed",
                    e.id
                )));
            }
        }
        Ok(entries)
    }
}

/// An entry as written: every field a value or a list of values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    target: Axis<TargetName>,
    #[serde(default)]
    workload: Axis<WorkloadKind>,
    #[serde(default)]
    nemesis: Axis<Mix>,
    #[serde(default, alias = "seed")]
    seeds: Axis<u64>,
    /// Each value one bug, or several joined with `+` (switched on together).
    #[serde(default, alias = "bugs")]
    bug: Axis<String>,
    #[serde(default)]
    read_mode: Axis<String>,
    /// Each value flags for every server, separated by spaces (`--max-append-entries=1`).
    #[serde(default, alias = "server_arg")]
    server_args: Axis<String>,
    #[serde(default)]
    time_limit: Axis<f64>,
    #[serde(default)]
    nemesis_interval: Axis<f64>,
    #[serde(default)]
    nemesis_schedule: Axis<nemesis::ScheduleMode>,
    #[serde(default)]
    leader_share: Axis<f64>,
    #[serde(default)]
    concurrency: Axis<Clients>,
    #[serde(default)]
    rate: Axis<f64>,
    #[serde(default)]
    op_timeout: Axis<f64>,
    expect: Expect,
}

/// Every combination of `specs` with the values of one axis (an empty axis leaves them as
/// they are, for the defaults to fill).
fn multiply<T: Clone>(
    specs: Vec<RunSpec>,
    axis: &Axis<T>,
    set: impl Fn(&mut RunSpec, T),
) -> Vec<RunSpec> {
    if axis.values.is_empty() {
        return specs;
    }
    specs
        .into_iter()
        .flat_map(|s| {
            axis.values
                .iter()
                .map(|v| {
                    let mut s = s.clone();
                    set(&mut s, v.clone());
                    s
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

impl RawEntry {
    fn expand(self, defaults: &RunSpec) -> Result<Vec<Entry>, String> {
        for (field, empty) in [
            ("target", self.target.given_empty),
            ("workload", self.workload.given_empty),
            ("nemesis", self.nemesis.given_empty),
            ("seeds", self.seeds.given_empty),
            ("bug", self.bug.given_empty),
            ("read_mode", self.read_mode.given_empty),
            ("server_args", self.server_args.given_empty),
            ("time_limit", self.time_limit.given_empty),
            ("nemesis_interval", self.nemesis_interval.given_empty),
            ("nemesis_schedule", self.nemesis_schedule.given_empty),
            ("leader_share", self.leader_share.given_empty),
            ("concurrency", self.concurrency.given_empty),
            ("rate", self.rate.given_empty),
            ("op_timeout", self.op_timeout.given_empty),
        ] {
            if empty {
                return Err(format!("{field}: an empty list gives no runs"));
            }
        }
        let mut specs = vec![RunSpec::default()];
        specs = multiply(specs, &self.target, |s, v| s.target = Some(v));
        specs = multiply(specs, &self.workload, |s, v| s.workload = Some(v));
        specs = multiply(specs, &self.nemesis, |s, v| s.nemesis = Some(v.0));
        specs = multiply(specs, &self.read_mode, |s, v| s.read_mode = Some(v));
        specs = multiply(specs, &self.server_args, |s, v: String| {
            // A blank value stays one (empty) flag, for `check` to refuse.
            let flags: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            s.server_args = Some(if flags.is_empty() { vec![v] } else { flags })
        });
        specs = multiply(specs, &self.bug, |s, v: String| {
            s.bugs = Some(v.split('+').map(|b| b.trim().to_string()).collect())
        });
        specs = multiply(specs, &self.time_limit, |s, v| s.time_limit = Some(v));
        specs = multiply(specs, &self.nemesis_interval, |s, v| {
            s.nemesis_interval = Some(v)
        });
        specs = multiply(specs, &self.nemesis_schedule, |s, v| {
            s.nemesis_schedule = Some(v)
        });
        specs = multiply(specs, &self.leader_share, |s, v| s.leader_share = Some(v));
        specs = multiply(specs, &self.concurrency, |s, v| s.concurrency = Some(v.0));
        specs = multiply(specs, &self.rate, |s, v| s.rate = Some(v));
        specs = multiply(specs, &self.op_timeout, |s, v| s.op_timeout = Some(v));
        specs = multiply(specs, &self.seeds, |s, v| s.seed = Some(v));
        // Axes with several values that the id does not otherwise show get a tag in it.
        let tags = IdTags {
            time_limit: self.time_limit.values.len() > 1,
            nemesis_interval: self.nemesis_interval.values.len() > 1,
            leader_share: self.leader_share.values.len() > 1,
            concurrency: self.concurrency.values.len() > 1,
            rate: self.rate.values.len() > 1,
            op_timeout: self.op_timeout.values.len() > 1,
        };
        specs
            .iter()
            .map(|spec| {
                let options = spec.or(defaults).resolve().map_err(|e| e.as_key())?;
                Ok(Entry {
                    id: entry_id(&options, &tags),
                    options,
                    expect: self.expect.0.clone(),
                })
            })
            .collect()
    }
}

/// Which varying run options an entry's ids must show.
#[derive(Default)]
struct IdTags {
    time_limit: bool,
    nemesis_interval: bool,
    leader_share: bool,
    concurrency: bool,
    rate: bool,
    op_timeout: bool,
}

/// `target-workload-nemesis[-bug=..][-read=..][-t=..][-overlap]-sSEED`, nemesis kinds joined
/// with `+`. The default (alternate) schedule adds nothing, so ids from before the schedule
/// mode existed stay as they were.
fn entry_id(o: &RunOptions, tags: &IdTags) -> String {
    let mut id = format!(
        "{}-{}-{}",
        o.target,
        o.workload.name(),
        o.nemesis_list().replace(',', "+")
    );
    if !o.bugs.is_empty() {
        id.push_str(&format!("-bug={}", o.bugs.join("+")));
    }
    if let Some(m) = &o.read_mode {
        id.push_str(&format!("-read={m}"));
    }
    if !o.server_args.is_empty() {
        id.push_str(&format!("-args={}", o.server_args.join("+")));
    }
    if tags.time_limit {
        id.push_str(&format!("-t={}", o.time_limit));
    }
    if tags.nemesis_interval {
        id.push_str(&format!("-i={}", o.nemesis_interval));
    }
    if o.nemesis_schedule == nemesis::ScheduleMode::Overlap {
        id.push_str("-overlap");
    }
    if let (true, Some(share)) = (tags.leader_share, o.leader_share) {
        id.push_str(&format!("-ls={share}"));
    }
    if tags.concurrency {
        id.push_str(&format!(
            "-c={}",
            match o.concurrency {
                Concurrency::Fixed(n) => n.to_string(),
                Concurrency::PerNode(k) => format!("{k}n"),
            }
        ));
    }
    if tags.rate {
        id.push_str(&format!("-r={}", o.rate));
    }
    if tags.op_timeout {
        id.push_str(&format!("-o={}", o.op_timeout));
    }
    id.push_str(&format!("-s{}", o.seed));
    id
}

/// A field given as one value or a list; `given_empty` remembers an explicit `[]`.
struct Axis<T> {
    values: Vec<T>,
    given_empty: bool,
}

impl<T> Default for Axis<T> {
    fn default() -> Self {
        Axis::of(Vec::new())
    }
}

impl<T> Axis<T> {
    fn of(values: Vec<T>) -> Axis<T> {
        Axis {
            given_empty: false,
            values,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Axis<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AxisVisitor(PhantomData))
    }
}

struct AxisVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for AxisVisitor<T> {
    type Value = Axis<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or a list of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Axis<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<T>()? {
            out.push(v);
        }
        Ok(Axis {
            given_empty: out.is_empty(),
            values: out,
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Axis<T>, E> {
        T::deserialize(StrDeserializer::<E>::new(v)).map(|x| Axis::of(vec![x]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Axis<T>, E> {
        T::deserialize(U64Deserializer::<E>::new(v)).map(|x| Axis::of(vec![x]))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Axis<T>, E> {
        T::deserialize(I64Deserializer::<E>::new(v)).map(|x| Axis::of(vec![x]))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Axis<T>, E> {
        T::deserialize(F64Deserializer::<E>::new(v)).map(|x| Axis::of(vec![x]))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Axis<T>, E> {
        T::deserialize(BoolDeserializer::<E>::new(v)).map(|x| Axis::of(vec![x]))
    }
}

/// One fault mix of a `nemesis` axis: `partition,kill`, `none`, or a list of kinds.
#[derive(Clone)]
struct Mix(Vec<nemesis::FaultKind>);

impl<'de> Deserialize<'de> for Mix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MixVisitor)
            .map(|m| Mix(m.unwrap_or_default()))
    }
}

/// One value of a `concurrency` axis.
#[derive(Clone)]
struct Clients(Concurrency);

impl<'de> Deserialize<'de> for Clients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConcurrencyVisitor).map(Clients)
    }
}

/// `valid`, `invalid`, or `{invalid: [anomaly types]}`.
struct Expect(Expectation);

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Expect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("valid, invalid, or {invalid: [anomaly types]}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expect, E> {
                match v {
                    "valid" => Ok(Expect(Expectation::Valid)),
                    "invalid" => Ok(Expect(Expectation::Invalid {
                        anomalies: Vec::new(),
                    })),
                    other => Err(E::custom(format!(
                        "expect: {other:?} (expected valid, invalid, or {{invalid: [anomaly types]}})"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expect, A::Error> {
                let mut anomalies = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "invalid" || anomalies.is_some() {
                        return Err(de::Error::custom(format!(
                            "expect: {key:?} (expected valid, invalid, or {{invalid: [anomaly types]}})"
                        )));
                    }
                    let types: Vec<String> = map
                        .next_value_seed(StringsSeed)?
                        .into_iter()
                        .map(|t| t.trim().to_string())
                        .collect();
                    if types.iter().any(String::is_empty) {
                        return Err(de::Error::custom("expect: an empty anomaly type"));
                    }
                    anomalies = Some(types);
                }
                match anomalies {
                    Some(anomalies) => Ok(Expect(Expectation::Invalid { anomalies })),
                    None => Err(de::Error::custom(
                        "expect: {} (expected valid, invalid, or {invalid: [anomaly types]})",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings, as a seed.
struct StringsSeed;

impl<'de> DeserializeSeed<'de> for StringsSeed {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        Ok(d.deserialize_any(crate::spec::Strings)?.unwrap_or_default())
    }
}
