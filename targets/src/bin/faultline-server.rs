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
use targets::runtime::{run, RunOptions};
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
}

/// A flag that failed validation: printed as one line, exit code 2.
struct FlagError(String);

fn parse_options(cli: &Cli) -> Result<(String, RunOptions), FlagError> {
    let protocol = cli.protocol.as_str();
    if !["raft", "paxos", "2pc"].contains(&protocol) {
        return Err(FlagError(format!(
            "--protocol: unknown protocol {protocol:?} (expected raft, paxos or 2pc)"
        )));
    }
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
        protocol.to_string(),
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

async fn serve(protocol: &str, opts: RunOptions) -> anyhow::Result<()> {
    match protocol {
        "raft" => run::<targets::raft::Raft>(opts).await?,
        "paxos" => run::<targets::paxos::Paxos>(opts).await?,
        "2pc" => run::<targets::twopc::TwoPc>(opts).await?,
        other => anyhow::bail!("--protocol: unknown protocol {other:?}"),
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
    match rt.block_on(serve(&protocol, opts)) {
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
