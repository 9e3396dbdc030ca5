//! Shell building blocks for a database that runs as one daemon per node, tracked by a pid file:
//! shared by every [`Database`](super::Database) implementation so that liveness, signals and
//! waiting mean the same thing for all of them.
use std::time::Duration;

use nemesis::{Command, Remote};

use super::DbError;

/// How long scripts sleep between polls on the node.
const POLL: &str = "0.02";

/// How many [`POLL`] sleeps fit in `d` (at least one).
fn polls(d: Duration) -> u64 {
    (d.as_millis() as u64 / 20).max(1)
}

/// One daemon on a node: the name its command line contains, and its pid file.
pub(crate) struct Daemon<'a> {
    pub name: &'a str,
    pub pid_file: String,
}

impl Daemon<'_> {
    /// Shell prelude: `$pidf`, `$pid` (from the pid file, maybe empty) and `alive PID`, which holds
    /// for a live (non-zombie) process of this daemon. The command line reads empty while the
    /// process is between fork and exec (or inside an exec), which counts as alive: `start` checks
    /// right after forking.
    pub fn prelude(&self) -> String {
        format!(
            "pidf={pidf}\n\
             alive() {{ s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${{s##*) }}; \
             case $s in Z*|X*) return 1;; esac; \
             c=$(tr -d '\\000' < /proc/$1/cmdline 2>/dev/null) || return 1; \
             case $c in ''|*{name}*) return 0;; esac; return 1; }}\n\
             pid=$(cat \"$pidf\" 2>/dev/null || true)\n",
            pidf = crate::cluster::shell_quote(&self.pid_file),
            name = self.name,
        )
    }

    /// Waits (on the node, after [`Daemon::prelude`]) until the recorded process is gone, then
    /// removes the pid file; fails after `polls` polls.
    fn wait_gone(&self, polls: u64) -> String {
        format!(
            "i=0\nwhile [ -n \"$pid\" ] && alive \"$pid\"; do\n\
             i=$((i+1)); [ $i -le {polls} ] || {{ echo \"{name} (pid $pid) still alive\" >&2; exit 1; }}\n\
             sleep {POLL}\ndone\nrm -f \"$pidf\"\n",
            name = self.name,
        )
    }

    /// Sends `sig` to the daemon. A daemon that is not running is an error unless `missing_ok`
    /// (resuming what is gone must be safe to repeat while healing).
    pub async fn signal(
        &self,
        node: &dyn Remote,
        sig: &str,
        missing_ok: bool,
    ) -> Result<(), DbError> {
        let script = format!(
            "{prelude}if [ -z \"$pid\" ] || ! alive \"$pid\"; then exit 3; fi\nkill -{sig} \"$pid\"\n",
            prelude = self.prelude()
        );
        let out = node.exec(Command::new(script).sudo("root")).await?;
        match out.status {
            Some(0) => Ok(()),
            Some(3) if missing_ok => Ok(()),
            Some(3) => Err(DbError::node(node, format!("{} is not running", self.name))),
            status => Err(DbError::node(
                node,
                format!(
                    "kill -{sig} {} failed ({status:?}): {}",
                    self.name,
                    out.stderr_str().trim()
                ),
            )),
        }
    }
}

/// How [`Daemon::start`] launches a daemon: `sh <run_script>` in `dir`, detached (setsid, all
/// three streams redirected so the ssh channel closes at once), output appended to `output`.
pub(crate) struct Launch<'a> {
    pub run_script: &'a str,
    /// Working directory of the daemon.
    pub dir: &'a str,
    /// Directories to create first.
    pub mkdirs: &'a [String],
    /// Shell lines run before the launch; they may set `$envs`, the environment of the daemon.
    pub setup: &'a str,
    pub output: &'a str,
    /// The TCP port that shows the daemon is serving (its own pid must listen on it).
    pub port: u16,
    pub timeout: Duration,
}

impl Daemon<'_> {
    /// Starts the daemon unless it already runs, and waits until that very process listens on
    /// `launch.port` (`ss -p` names the pid): a daemon that exits during start is an error quoting
    /// its last output.
    pub async fn start(&self, node: &dyn Remote, launch: &Launch<'_>) -> Result<(), DbError> {
        let q = crate::cluster::shell_quote;
        let mkdirs: Vec<String> = launch.mkdirs.iter().map(|d| q(d)).collect();
        let script = format!(
            "{prelude}if [ -n \"$pid\" ] && alive \"$pid\"; then exit 0; fi\n\
             test -x {rs} || {{ echo '{name} is not configured ({rs} missing)' >&2; exit 3; }}\n\
             mkdir -p {mkdirs}\nenvs=\n{setup}\
             cd {dir}\n\
             env $envs setsid sh {rs} >>{out} 2>&1 </dev/null &\n\
             pid=$!\necho $pid > \"$pidf\"\n\
             i=0\nwhile :; do\n\
             if ! alive $pid; then echo \"{name} exited during start; last output:\" >&2; tail -n 5 {out} >&2; rm -f \"$pidf\"; exit 4; fi\n\
             if ss -Hltnp \"sport = :{port}\" 2>/dev/null | grep -q \"pid=$pid,\"; then exit 0; fi\n\
             i=$((i+1)); [ $i -le {polls} ] || {{ echo \"{name} (pid $pid) not listening on port {port} after {secs:?}\" >&2; exit 5; }}\n\
             sleep {POLL}\ndone\n",
            prelude = self.prelude(),
            name = self.name,
            rs = q(launch.run_script),
            mkdirs = mkdirs.join(" "),
            setup = launch.setup,
            dir = q(launch.dir),
            out = q(launch.output),
            port = launch.port,
            polls = polls(launch.timeout),
            secs = launch.timeout,
        );
        let out = node
            .exec(
                Command::new(script)
                    .sudo("root")
                    .timeout(launch.timeout + Duration::from_secs(20)),
            )
            .await?;
        if out.success() {
            Ok(())
        } else {
            Err(DbError::node(
                node,
                format!(
                    "{} start failed: {}",
                    self.name,
                    out.stderr_str().trim().replace('\n', " | ")
                ),
            ))
        }
    }

    /// SIGTERM (and SIGCONT, in case it is paused), SIGKILL after `grace`, then waits until it is
    /// gone. Stopping a daemon that does not run is not an error.
    pub async fn stop(&self, node: &dyn Remote, grace: Duration) -> Result<(), DbError> {
        let script = format!(
            "{prelude}if [ -z \"$pid\" ] || ! alive \"$pid\"; then rm -f \"$pidf\"; exit 0; fi\n\
             kill -TERM \"$pid\"; kill -CONT \"$pid\" 2>/dev/null || true\n\
             i=0\nwhile alive \"$pid\" && [ $i -lt {grace} ]; do i=$((i+1)); sleep {POLL}; done\n\
             alive \"$pid\" && kill -KILL \"$pid\" 2>/dev/null\n{wait}",
            prelude = self.prelude(),
            grace = polls(grace),
            wait = self.wait_gone(polls(GONE_TIMEOUT)),
        );
        as_root(node, script, grace + GONE_TIMEOUT + Duration::from_secs(20))
            .await
            .map(drop)
    }

    /// SIGKILL, then waits until the process is gone. Killing a daemon that does not run is not
    /// an error.
    pub async fn kill(&self, node: &dyn Remote) -> Result<(), DbError> {
        let script = format!(
            "{prelude}if [ -n \"$pid\" ] && alive \"$pid\"; then kill -KILL \"$pid\"; fi\n{wait}",
            prelude = self.prelude(),
            wait = self.wait_gone(polls(GONE_TIMEOUT)),
        );
        as_root(node, script, GONE_TIMEOUT + Duration::from_secs(20))
            .await
            .map(drop)
    }

    /// Whether the recorded process is alive (a paused one counts).
    pub async fn is_running(&self, node: &dyn Remote) -> Result<bool, DbError> {
        let script = format!(
            "{prelude}if [ -n \"$pid\" ] && alive \"$pid\"; then echo yes; else echo no; fi\n",
            prelude = self.prelude()
        );
        Ok(as_root(node, script, Duration::from_secs(30)).await?.trim() == "yes")
    }
}

/// Runs `script` as root on `node`, giving up after `timeout`; its standard output.
pub(crate) async fn as_root(
    node: &dyn Remote,
    script: String,
    timeout: Duration,
) -> Result<String, DbError> {
    Ok(node
        .run(Command::new(script).sudo("root").timeout(timeout))
        .await?)
}

/// How long a killed daemon may take to disappear.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);
