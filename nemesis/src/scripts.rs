//! The shell text the nemesis runs on nodes, built by pure functions so it can be unit-tested.
//!
//! Conventions shared by every script: POSIX `sh` (dash-compatible), run as root, idempotent
//! where it heals, and a failure the nemesis can classify prints a `faultline: ...` line on
//! stderr and exits [`EXIT_UNSUPPORTED`] (the fault cannot be installed on this node: a skip,
//! not a harness failure).
use crate::clock;

/// Exit status of a script that found the fault unsupported on this node.
pub const EXIT_UNSUPPORTED: u32 = 3;

/// Our iptables chain for partitions, jumped to from `INPUT`.
pub const PARTITION_CHAIN: &str = "FAULTLINE";
/// Our iptables chain for random packet loss, jumped to from `INPUT`.
pub const LOSS_CHAIN: &str = "FAULTLINE-LOSS";
/// The root qdisc kinds the nemesis installs (and heal removes).
pub const OUR_QDISCS: [&str; 2] = ["tbf", "netem"];

/// Single-quotes `s` for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn iptables_for(addr: &str) -> &'static str {
    if addr.contains(':') {
        "ip6tables"
    } else {
        "iptables"
    }
}

fn require(tool: &str) -> String {
    format!(
        "command -v {tool} >/dev/null 2>&1 || {{ echo 'faultline: {tool} not found' >&2; exit {EXIT_UNSUPPORTED}; }}\n"
    )
}

/// (Re)creates `chain` empty and jumps to it first thing from `INPUT`, for each iptables
/// flavour in `tools`.
fn fresh_chain(tools: &[&str], chain: &str) -> String {
    let mut s = String::new();
    for t in tools {
        s.push_str(&format!(
            "{t} -w -N {chain} 2>/dev/null || {t} -w -F {chain}\n\
             {t} -w -C INPUT -j {chain} 2>/dev/null || {t} -w -I INPUT 1 -j {chain}\n"
        ));
    }
    s
}

fn tools_for(peers: &[&str]) -> Vec<&'static str> {
    let mut tools: Vec<&'static str> = peers.iter().map(|p| iptables_for(p)).collect();
    tools.sort();
    tools.dedup();
    if tools.is_empty() {
        tools.push("iptables");
    }
    tools
}

/// Makes this node drop every packet arriving from `peers` (addresses). An empty list leaves an
/// empty chain: the node drops nothing. Only the listed addresses are touched, so the
/// controller's connection survives.
pub fn partition_install(peers: &[&str]) -> String {
    let tools = tools_for(peers);
    let mut s = String::from("set -e\n");
    for t in &tools {
        s.push_str(&require(t));
    }
    s.push_str(&fresh_chain(&tools, PARTITION_CHAIN));
    for p in peers {
        s.push_str(&format!(
            "{} -w -A {PARTITION_CHAIN} -s {} -j DROP\n",
            iptables_for(p),
            quote(p)
        ));
    }
    s
}

/// Drops each packet arriving from `peers` with probability `p` (0 < p <= 1).
pub fn loss_install(peers: &[&str], p: f64) -> String {
    let tools = tools_for(peers);
    let mut s = String::from("set -e\n");
    for t in &tools {
        s.push_str(&require(t));
    }
    s.push_str(&fresh_chain(&tools, LOSS_CHAIN));
    for peer in peers {
        s.push_str(&format!(
            "{} -w -A {LOSS_CHAIN} -s {} -m statistic --mode random --probability {} -j DROP\n",
            iptables_for(peer),
            quote(peer),
            format_probability(p)
        ));
    }
    s
}

/// `p` with at most 4 decimals and no trailing zeros, as iptables' `--probability` takes it.
pub fn format_probability(p: f64) -> String {
    let s = format!("{:.4}", p.clamp(0.0, 1.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.into()
    }
}

/// Removes one of our chains (all jumps to it, its rules, the chain), for IPv4 and IPv6.
/// Succeeds whether or not the chain exists.
pub fn chain_remove(chain: &str) -> String {
    let mut s = String::new();
    for t in ["iptables", "ip6tables"] {
        s.push_str(&format!(
            "if command -v {t} >/dev/null 2>&1; then\n\
             \x20 while {t} -w -D INPUT -j {chain} 2>/dev/null; do :; done\n\
             \x20 while {t} -w -D OUTPUT -j {chain} 2>/dev/null; do :; done\n\
             \x20 {t} -w -F {chain} 2>/dev/null || true\n\
             \x20 {t} -w -X {chain} 2>/dev/null || true\n\
             fi\n"
        ));
    }
    s.push_str(
        "if command -v nft >/dev/null 2>&1; then nft delete table inet faultline 2>/dev/null || true; fi\n",
    );
    s
}

/// Sets `dev` to the interface that routes to `peer` (the cluster interface).
fn find_dev(peer: &str) -> String {
    format!(
        "{}dev=$(ip route get {} 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1)\n\
         [ -n \"$dev\" ] || {{ echo 'faultline: no route to {}' >&2; exit {EXIT_UNSUPPORTED}; }}\n",
        require("tc"),
        quote(peer),
        peer.replace('\'', "")
    )
}

/// Limits egress on the cluster interface with a token bucket.
pub fn bandwidth_install(peer: &str, kbit: u64) -> String {
    // A bucket of at least 1/10 s of traffic, never below one 16 kB burst (tbf needs burst >=
    // rate/HZ to reach the rate at all).
    let burst = (kbit * 1000 / 8 / 10).max(16_000);
    format!(
        "{}echo \"$dev\"\ntc qdisc replace dev \"$dev\" root tbf rate {kbit}kbit burst {burst} latency 100ms\n",
        find_dev(peer)
    )
}

/// Installs a netem qdisc with `args` (e.g. `delay 100ms 20ms`). A kernel without netem makes
/// the script exit [`EXIT_UNSUPPORTED`] with `faultline: netem unavailable: <tc's message>`.
pub fn netem_install(peer: &str, args: &str) -> String {
    format!(
        "{}echo \"$dev\"\n\
         if ! err=$(tc qdisc replace dev \"$dev\" root netem {args} 2>&1); then\n\
         \x20 case \"$err\" in\n\
         \x20   *nknown*|*netem*|*\"No such file\"*) echo \"faultline: netem unavailable: $err\" >&2; exit {EXIT_UNSUPPORTED};;\n\
         \x20   *) echo \"$err\" >&2; exit 1;;\n\
         \x20 esac\n\
         fi\n",
        find_dev(peer)
    )
}

/// Lists `dev kind` for each root qdisc of ours, one per line.
const OUR_ROOT_QDISCS: &str = "tc qdisc show 2>/dev/null | awk '/ root / && ($2==\"tbf\" || $2==\"netem\") { for (i = 1; i < NF; i++) if ($i == \"dev\") print $(i+1), $2 }'";

/// Deletes every root qdisc of ours on every interface; succeeds when there is none.
pub fn qdisc_remove() -> String {
    format!(
        "if command -v tc >/dev/null 2>&1; then\n\
         {OUR_ROOT_QDISCS} | while read -r dev kind; do tc qdisc del dev \"$dev\" root || exit 1; done\n\
         fi\n"
    )
}

/// Writes `content` to `path` atomically (a reader sees the old or the new text, never half).
/// The temporary file is private to the writing shell (`.tmp.$$`): a strobe loop being stopped
/// may still be renaming its own.
pub fn write_file_atomically(path: &str, content: &str) -> String {
    let dir = match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    };
    format!(
        "mkdir -p {dir} && printf '%s\\n' {content} > {tmp} && mv -f {tmp} {path}\n",
        dir = quote(dir),
        content = quote(content),
        tmp = private_tmp(path),
        path = quote(path)
    )
}

/// Prints the node's wall clock in nanoseconds, as a program started under libfaketime with
/// `offset_file` would see it.
pub fn faketime_date(offset_file: &str) -> String {
    format!(
        "lib=''\nfor f in {candidates}; do [ -e \"$f\" ] && {{ lib=$f; break; }}; done\n\
         [ -n \"$lib\" ] || {{ echo 'faultline: libfaketime not found' >&2; exit {EXIT_UNSUPPORTED}; }}\n\
         LD_PRELOAD=$lib FAKETIME_TIMESTAMP_FILE={file} FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 date +%s%N\n",
        candidates = clock::LIBFAKETIME_CANDIDATES.join(" "),
        file = quote(offset_file)
    )
}

/// Refuses (exit [`EXIT_UNSUPPORTED`]) when a time daemon could undo a clock change.
pub fn require_ntp_off() -> String {
    format!(
        "if command -v timedatectl >/dev/null 2>&1 && [ \"$(timedatectl show -p NTP --value 2>/dev/null)\" = yes ]; then\n\
         \x20 echo 'faultline: NTP is on (timedatectl set-ntp false first)' >&2; exit {EXIT_UNSUPPORTED}\nfi\n\
         for d in chronyd ntpd openntpd systemd-timesyncd; do\n\
         \x20 if pgrep -x \"$d\" >/dev/null 2>&1; then echo \"faultline: $d is running; stop it first\" >&2; exit {EXIT_UNSUPPORTED}; fi\n\
         done\n"
    )
}

/// Steps the real clock by `delta_ms` (relative to its current reading).
pub fn real_clock_step(delta_ms: i64) -> String {
    format!(
        "{}n=$(date +%s%N)\nn=$((n + {delta_ns}))\n\
         date -s \"@$((n / 1000000000)).$(printf %09d $((n % 1000000000)))\" >/dev/null\n",
        require_ntp_off(),
        delta_ns = delta_ms as i128 * 1_000_000
    )
}

/// Sets the real clock to `unix_ns` (the controller's time plus a wanted offset).
pub fn real_clock_set(unix_ns: i128) -> String {
    format!(
        "{}date -s @{}.{:09} >/dev/null\n",
        require_ntp_off(),
        unix_ns.div_euclid(1_000_000_000),
        unix_ns.rem_euclid(1_000_000_000)
    )
}

/// A background loop that flips the node's offset between `a_ms` and `b_ms` every `period_ms`
/// for `duration_ms`, then returns to offset zero. `set` is a shell function body that applies
/// the offset in `$1` (milliseconds); the loop records its pid in `pidfile`.
pub fn strobe_loop(set_fn: &str, a_ms: i64, b_ms: i64, period_ms: u64, duration_ms: u64) -> String {
    format!(
        "#!/bin/sh\n# faultline clock strobe\nset_offset() {{\n{set_fn}\n}}\n\
         end=$(( $(date +%s) + {dur_s} ))\n\
         while [ \"$(date +%s)\" -lt \"$end\" ]; do\n\
         \x20 set_offset {a_ms}; sleep {p}\n\
         \x20 set_offset {b_ms}; sleep {p}\n\
         done\nset_offset 0\n",
        dur_s = duration_ms.div_ceil(1000),
        p = format_seconds(period_ms)
    )
}

/// `ms` as decimal seconds (`1.5`), as sleep(1) takes it.
pub fn format_seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The `set_offset` body for libfaketime: rewrite the offset file.
pub fn strobe_set_faketime(offset_file: &str) -> String {
    format!(
        "  s=$1; sign=+; [ \"$s\" -lt 0 ] && {{ sign=-; s=$((0 - s)); }}\n\
         \x20 printf '%s%d.%03d\\n' \"$sign\" $((s / 1000)) $((s % 1000)) > {tmp} && mv -f {tmp} {f}",
        tmp = private_tmp(offset_file),
        f = quote(offset_file)
    )
}

/// The `set_offset` body for the real clock: step by the difference to the last offset.
pub fn strobe_set_real() -> String {
    "  cur=${cur:-0}; d=$(( $1 - cur )); cur=$1\n\
     \x20 n=$(date +%s%N); n=$((n + d * 1000000))\n\
     \x20 date -s \"@$((n / 1000000000)).$(printf %09d $((n % 1000000000)))\" >/dev/null"
        .to_string()
}

/// Starts `script_path` detached (its own session, so one signal to `-pid` stops the loop and
/// its `sleep`), recording its pid in `pidfile`.
pub fn start_detached(script_path: &str, pidfile: &str) -> String {
    format!(
        "setsid sh {s} >/dev/null 2>&1 </dev/null & echo $! > {p}\n",
        s = quote(script_path),
        p = quote(pidfile)
    )
}

/// Stops a detached loop started by [`start_detached`] and waits (up to 2 s) until its process
/// group is gone, so that nothing it started still writes afterwards; succeeds when none runs.
pub fn stop_detached(pidfile: &str) -> String {
    format!(
        "if [ -f {p} ]; then pid=$(cat {p}); kill -TERM -- -\"$pid\" 2>/dev/null || kill -TERM \"$pid\" 2>/dev/null; \
         i=0; while {{ kill -0 -- -\"$pid\" 2>/dev/null || kill -0 \"$pid\" 2>/dev/null; }} && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done; \
         rm -f {p}; fi\n",
        p = quote(pidfile)
    )
}

/// A temporary name next to `path` private to the running shell (its pid), quoted for sh.
fn private_tmp(path: &str) -> String {
    format!("{}$$", quote(&format!("{path}.tmp.")))
}

/// Sends SIGCONT to every stopped (state `T`) process on the node.
pub fn continue_stopped() -> String {
    "ps -eo pid=,stat= | awk '$2 ~ /^T/ {print $1}' | while read -r pid; do kill -CONT \"$pid\" 2>/dev/null; done; true\n".to_string()
}

/// Prints one tagged line per fault still installed on the node; parsed by
/// [`crate::heal::parse_residue`].
pub fn residue_probe(offset_file: &str, strobe_pidfile: &str) -> String {
    format!(
        "for t in iptables ip6tables; do\n\
         \x20 command -v $t >/dev/null 2>&1 && $t -w -S 2>/dev/null | awk -v t=$t '$1 == \"-N\" && $2 ~ /^FAULTLINE/ {{ print \"chain\", t, $2 }}'\n\
         done\n\
         command -v nft >/dev/null 2>&1 && nft list tables 2>/dev/null | awk '$NF == \"faultline\" {{ print \"nft\", $2, $3 }}'\n\
         if command -v tc >/dev/null 2>&1; then {OUR_ROOT_QDISCS} | sed 's/^/qdisc /'; fi\n\
         if [ -f {f} ]; then printf 'offset %s\\n' \"$(head -n 1 {f})\"; fi\n\
         if [ -f {p} ] && kill -0 \"$(cat {p})\" 2>/dev/null; then echo \"strobe $(cat {p})\"; fi\n\
         ps -eo pid=,stat=,comm= | awk '$2 ~ /^T/ {{ print \"stopped\", $1, $3 }}'\n\
         true\n",
        f = quote(offset_file),
        p = quote(strobe_pidfile)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -n` parses without running: every script we build must be valid POSIX sh.
    fn assert_valid_sh(script: &str) {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .expect("run sh -n");
        assert!(
            out.status.success(),
            "invalid sh ({}):\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn every_script_is_valid_sh() {
        let f = "/var/lib/faultline/clock/n1.faketime";
        for s in [
            partition_install(&["10.0.0.2", "fd00::3"]),
            partition_install(&[]),
            loss_install(&["10.0.0.2"], 0.3),
            chain_remove(PARTITION_CHAIN),
            bandwidth_install("10.0.0.2", 1000),
            netem_install("10.0.0.2", "delay 10ms"),
            qdisc_remove(),
            write_file_atomically(f, "+1.500"),
            faketime_date(f),
            require_ntp_off(),
            real_clock_step(-20),
            real_clock_set(1_700_000_000_000_000_000),
            strobe_loop(&strobe_set_faketime(f), 100, -100, 200, 1000),
            strobe_loop(&strobe_set_real(), 100, -100, 200, 1000),
            start_detached("/x.sh", "/x.pid"),
            stop_detached("/x.pid"),
            continue_stopped(),
            residue_probe(f, "/x.pid"),
            crate::heal::heal_script("n1", f, true),
        ] {
            assert_valid_sh(&s);
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("10.0.0.2"), "'10.0.0.2'");
    }

    #[test]
    fn partition_script_drops_only_peers_inbound() {
        let s = partition_install(&["10.1.0.2", "10.1.0.3"]);
        assert_eq!(
            s,
            "set -e\n\
             command -v iptables >/dev/null 2>&1 || { echo 'faultline: iptables not found' >&2; exit 3; }\n\
             iptables -w -N FAULTLINE 2>/dev/null || iptables -w -F FAULTLINE\n\
             iptables -w -C INPUT -j FAULTLINE 2>/dev/null || iptables -w -I INPUT 1 -j FAULTLINE\n\
             iptables -w -A FAULTLINE -s '10.1.0.2' -j DROP\n\
             iptables -w -A FAULTLINE -s '10.1.0.3' -j DROP\n"
        );
        assert!(
            !s.contains("OUTPUT"),
            "only inbound: a grudge is about what a node receives"
        );
    }

    #[test]
    fn partition_script_uses_ip6tables_for_v6_peers() {
        let s = partition_install(&["fd00::2", "10.0.0.3"]);
        assert!(s.contains("ip6tables -w -A FAULTLINE -s 'fd00::2' -j DROP"));
        assert!(s.contains("iptables -w -A FAULTLINE -s '10.0.0.3' -j DROP"));
        assert!(s.contains("ip6tables -w -N FAULTLINE"));
    }

    #[test]
    fn empty_partition_still_makes_a_chain_and_drops_nothing() {
        let s = partition_install(&[]);
        assert!(s.contains("iptables -w -N FAULTLINE"));
        assert!(!s.contains("DROP"));
    }

    #[test]
    fn loss_script_uses_statistic_match_per_peer() {
        let s = loss_install(&["10.1.0.2"], 0.5);
        assert!(s.contains(
            "iptables -w -N FAULTLINE-LOSS 2>/dev/null || iptables -w -F FAULTLINE-LOSS\n"
        ));
        assert!(s.contains("iptables -w -I INPUT 1 -j FAULTLINE-LOSS"));
        assert!(s.ends_with(
            "iptables -w -A FAULTLINE-LOSS -s '10.1.0.2' -m statistic --mode random --probability 0.5 -j DROP\n"
        ));
    }

    #[test]
    fn probabilities_are_formatted_for_iptables() {
        for (p, want) in [
            (0.5, "0.5"),
            (0.25, "0.25"),
            (1.0, "1"),
            (0.33333, "0.3333"),
            (0.0, "0"),
            (7.0, "1"),
        ] {
            assert_eq!(format_probability(p), want, "{p}");
        }
    }

    #[test]
    fn chain_removal_is_idempotent_text() {
        let s = chain_remove(PARTITION_CHAIN);
        assert!(s.contains("while iptables -w -D INPUT -j FAULTLINE 2>/dev/null; do :; done"));
        assert!(s.contains("iptables -w -X FAULTLINE 2>/dev/null || true"));
        assert!(s.contains("ip6tables -w -X FAULTLINE"));
        assert!(!s.contains("set -e"));
    }

    #[test]
    fn tc_scripts() {
        let b = bandwidth_install("10.1.0.2", 1000);
        assert!(b.contains("ip route get '10.1.0.2'"));
        assert!(b.contains(
            "tc qdisc replace dev \"$dev\" root tbf rate 1000kbit burst 16000 latency 100ms"
        ));
        let b = bandwidth_install("10.1.0.2", 100_000);
        assert!(b.contains("rate 100000kbit burst 1250000 "));
        let n = netem_install("10.1.0.2", "delay 100ms 10ms");
        assert!(n.contains("tc qdisc replace dev \"$dev\" root netem delay 100ms 10ms"));
        assert!(n.contains("faultline: netem unavailable: $err"));
        assert!(qdisc_remove().contains("tc qdisc del dev \"$dev\" root"));
    }

    #[test]
    fn offset_file_is_written_atomically() {
        assert_eq!(
            write_file_atomically("/var/lib/faultline/clock/n1.faketime", "+1.500"),
            "mkdir -p '/var/lib/faultline/clock' && printf '%s\\n' '+1.500' > \
             '/var/lib/faultline/clock/n1.faketime.tmp.'$$ && mv -f \
             '/var/lib/faultline/clock/n1.faketime.tmp.'$$ '/var/lib/faultline/clock/n1.faketime'\n"
        );
    }

    #[test]
    fn faketime_date_runs_date_under_the_same_file() {
        let s = faketime_date("/var/lib/faultline/clock/n1.faketime");
        assert!(s.contains(
            "LD_PRELOAD=$lib FAKETIME_TIMESTAMP_FILE='/var/lib/faultline/clock/n1.faketime' FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 date +%s%N"
        ));
        assert!(s.contains("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"));
    }

    #[test]
    fn real_clock_scripts_check_ntp_and_handle_negative_times() {
        let s = real_clock_step(-1500);
        assert!(s.contains("timedatectl show -p NTP --value"));
        assert!(s.contains("n=$((n + -1500000000))"));
        assert!(real_clock_set(1_700_000_000_123_456_789)
            .ends_with("date -s @1700000000.123456789 >/dev/null\n"));
        assert!(real_clock_set(5).ends_with("date -s @0.000000005 >/dev/null\n"));
    }

    #[test]
    fn strobe_loop_text() {
        let s = strobe_loop(&strobe_set_faketime("/f"), 200, -200, 500, 2500);
        assert!(s.contains("end=$(( $(date +%s) + 3 ))"));
        assert!(s.contains("set_offset 200; sleep 0.500"));
        assert!(s.contains("set_offset -200; sleep 0.500"));
        assert!(s.ends_with("done\nset_offset 0\n"));
        assert_eq!(format_seconds(1500), "1.500");
    }
}
