//! `faultline-server`: runs one node of a bundled reference cluster (see `targets/PROTOCOL.md`).
//!
//! Exit codes: 0 on a clean exit, 1 on a runtime failure (cannot bind, unreadable log), 2 on bad
//! command-line flags.
use anyhow::Context;
use clap::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use targets::runtime::{run, run_with, RunOptions};
use targets::sm::{Config, ReadMode};

#[derive(Parser, Debug)]
#[command(
    name = "faultline-server",
    about = "A node of a Faultline reference cluster"
)]
struct Cli {
    /// raft, paxos or 2pc.
    #[arg(long)]
    protocol: String,
    /// This node's id, e.g. n1.
    #[arg(long)]
    id: String,
    /// Address for clients and peers alike, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: String,
    /// The other members: n2=ADDR,n3=ADDR (repeatable). Empty for a single-node cluster.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Where the write-ahead log lives.
    #[arg(long)]
    data_dir: PathBuf,
    /// Switch on a known bug (repeatable); see BUGS.md.
    #[arg(long = "bug")]
    bugs: Vec<String>,
    /// quorum (default) or lease.
    #[arg(long, default_value = "quorum")]
    read_mode: String,
    /// Seed for the node's own randomness (election timeouts).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write logs here instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Tick period in milliseconds.
    #[arg(long, default_value_t = 5)]
    tick_ms: u64,
    /// Raft only: most log entries in one AppendEntries message (default 1024). A small batch
    /// makes a new leader replicate an older term's entries before its own no-op, one message at
    /// a time (see BUGS.md, `commit-old-term`).
    #[arg(long, value_name = "N")]
    max_append_entries: Option<usize>,
}

/// A flag that failed validation: printed as one line, exit code 2.
struct FlagError(String);

/// What `--protocol` and the protocol's tuning flags select.
#[derive(Debug, Clone, PartialEq)]
enum Protocol {
    Raft(targets::raft::Tuning),
    Paxos,
    TwoPc,
}

fn parse_protocol(cli: &Cli) -> Result<Protocol, FlagError> {
    let protocol = match cli.protocol.as_str() {
        "raft" => Protocol::Raft(targets::raft::Tuning::default()),
        "paxos" => Protocol::Paxos,
        "2pc" => Protocol::TwoPc,
        other => {
            return Err(FlagError(format!(
                "--protocol: unknown protocol {other:?} (expected raft, paxos or 2pc)"
            )))
        }
    };
    match (protocol, cli.max_append_entries) {
        (p, None) => Ok(p),
        (_, Some(0)) => Err(FlagError("--max-append-entries: must be at least 1".into())),
        (Protocol::Raft(tuning), Some(n)) => Ok(Protocol::Raft(targets::raft::Tuning {
            max_append_entries: n,
            ..tuning
        })),
        (_, Some(_)) => Err(FlagError(format!(
            "--max-append-entries: only raft has this setting, not {}",
            cli.protocol
        ))),
    }
}

fn parse_options(cli: &Cli) -> Result<(Protocol, RunOptions), FlagError> {
    let parsed = parse_protocol(cli)?;
    let protocol = cli.protocol.as_str();
    if cli.id.is_empty() || cli.id.contains(['=', ',']) {
        return Err(FlagError(format!("--id: invalid node id {:?}", cli.id)));
    }
    let listen: SocketAddr = cli
        .listen
        .parse()
        .map_err(|e| FlagError(format!("--listen {}: {e}", cli.listen)))?;
    let mut peer_addrs = BTreeMap::new();
    for p in cli.peers.iter().filter(|p| !p.is_empty()) {
        let Some((id, addr)) = p.split_once('=') else {
            return Err(FlagError(format!("--peers: {p:?} is not ID=HOST:PORT")));
        };
        if id.is_empty() || addr.is_empty() {
            return Err(FlagError(format!("--peers: {p:?} is not ID=HOST:PORT")));
        }
        if id == cli.id {
            return Err(FlagError(format!("--peers: {id} is this node's own id")));
        }
        if addr
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            return Err(FlagError(format!("--peers: {p:?} has no valid port")));
        }
        if peer_addrs
            .insert(id.to_string(), addr.to_string())
            .is_some()
        {
            return Err(FlagError(format!("--peers: {id} given twice")));
        }
    }
    let read_mode = match cli.read_mode.as_str() {
        "quorum" => ReadMode::Quorum,
        "lease" => ReadMode::Lease,
        other => {
            return Err(FlagError(format!(
                "--read-mode: unknown mode {other:?} (expected quorum or lease)"
            )))
        }
    };
    if read_mode == ReadMode::Lease && protocol != "raft" {
        return Err(FlagError(format!(
            "--read-mode lease: only raft supports leases, not {protocol}"
        )));
    }
    let known: Option<&[&str]> = match protocol {
        "raft" => Some(targets::raft::BUGS),
        "2pc" => Some(&[
            targets::twopc::BUG_EARLY_UNLOCK,
            targets::twopc::BUG_VOLATILE_PREPARE,
        ]),
        // Validated by the protocol itself once it is built in.
        _ => None,
    };
    let mut bugs = BTreeSet::new();
    for b in &cli.bugs {
        if let Some(known) = known {
            if !known.contains(&b.as_str()) {
                return Err(FlagError(format!(
                    "--bug: {protocol} has no bug {b:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        bugs.insert(b.clone());
    }
    if cli.tick_ms == 0 {
        return Err(FlagError("--tick-ms: must be at least 1".into()));
    }
    let config = Config {
        id: cli.id.clone(),
        peers: peer_addrs.keys().cloned().collect(),
        bugs,
        read_mode,
        seed: cli.seed,
    };
    Ok((
        parsed,
        RunOptions {
            config,
            listen,
            peer_addrs,
            data_dir: cli.data_dir.clone(),
            tick: Duration::from_millis(cli.tick_ms),
        },
    ))
}

fn init_logging(log_file: Option<&PathBuf>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--log-file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

async fn serve(protocol: Protocol, opts: RunOptions) -> anyhow::Result<()> {
    match protocol {
        Protocol::Raft(tuning) => {
            run_with(opts, move |config, records, now| {
                targets::raft::Raft::recover_with(config, tuning, records, now)
            })
            .await?
        }
        Protocol::Paxos => run::<targets::paxos::Paxos>(opts).await?,
        Protocol::TwoPc => run::<targets::twopc::TwoPc>(opts).await?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message runs until its blank line (then tips and usage): keep it, on one line.
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!(
                "faultline-server: {}",
                message.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let (protocol, opts) = match parse_options(&cli) {
        Ok(x) => x,
        Err(FlagError(msg)) => {
            eprintln!("faultline-server: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(cli.log_file.as_ref()) {
        eprintln!("faultline-server: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline-server: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(protocol, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.log_file.is_some() {
                tracing::error!(error = %format!("{e:#}"), "exiting");
            }
            eprintln!("faultline-server: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(args: &[&str]) -> Result<Protocol, String> {
        let mut argv = vec![
            "faultline-server",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7001",
            "--data-dir",
            "/tmp/x",
        ];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        parse_protocol(&cli).map_err(|FlagError(m)| m)
    }

    #[test]
    fn max_append_entries_tunes_raft_only() {
        let default = targets::raft::Tuning::default();
        assert_eq!(
            protocol(&["--protocol", "raft"]),
            Ok(Protocol::Raft(default.clone()))
        );
        assert_eq!(
            protocol(&["--protocol", "raft", "--max-append-entries", "1"]),
            Ok(Protocol::Raft(targets::raft::Tuning {
                max_append_entries: 1,
                ..default
            }))
        );
        assert_eq!(
            protocol(&["--protocol", "raft", "--max-append-entries", "0"]),
            Err("--max-append-entries: must be at least 1".to_string())
        );
        assert_eq!(
            protocol(&["--protocol", "paxos", "--max-append-entries", "8"]),
            Err("--max-append-entries: only raft has this setting, not paxos".to_string())
        );
        assert_eq!(protocol(&["--protocol", "2pc"]), Ok(Protocol::TwoPc));
        assert!(protocol(&["--protocol", "zab"])
            .unwrap_err()
            .starts_with("--protocol: unknown protocol"));
    }
}
