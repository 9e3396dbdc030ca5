//! Shell building blocks for a database that runs as one daemon per node, tracked by a pid file:
//! shared by every [`Database`](super::Database) implementation so that liveness, signals and
//! waiting mean the same thing for all of them.
use std::time::Duration;

use nemesis::{Command, Remote};

use super::DbError;

/// How long scripts sleep between polls on the node.
pub(crate) const POLL: &str = "0.02";

/// How many [`POLL`] sleeps fit in `d` (at least one).
pub(crate) fn polls(d: Duration) -> u64 {
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
    pub fn wait_gone(&self, polls: u64) -> String {
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
