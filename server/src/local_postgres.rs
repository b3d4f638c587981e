//! The private PostgreSQL cluster the portal runs when DATABASE_URL is unset:
//! initialised on first start in <data-dir>/pg, reused afterwards, reachable
//! only through a Unix socket in a private directory, and stopped on exit.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{Gid, Uid, User};
use sqlx::postgres::PgConnectOptions;

const SUPERUSER: &str = "loopback";
pub const DATABASE: &str = "loopback";
/// Only names the socket file; nothing listens on TCP.
const PORT: u16 = 5432;
/// sun_path holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum LocalPostgresError {
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql`, or set DATABASE_URL to an existing database"
    )]
    MissingBinaries,
    #[error(
        "--postgres-bin-dir {path} does not contain initdb and pg_ctl; point it at PostgreSQL's bin directory, or set DATABASE_URL to an existing database"
    )]
    MissingBinariesIn { path: PathBuf },
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` user to run it as; install the postgresql package, run the portal as a normal user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "initdb failed for {path}: {detail}; see the message above, or set DATABASE_URL to use an existing database"
    )]
    Initdb { path: PathBuf, detail: String },
    #[error("PostgreSQL in {path} did not start: {detail}; its log is {log}")]
    Start {
        path: PathBuf,
        log: PathBuf,
        detail: String,
    },
}

/// A running private cluster. Call [`LocalPostgres::stop`] on the way out.
#[derive(Debug)]
pub struct LocalPostgres {
    bin_dir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(Uid, Gid)>,
}

impl LocalPostgres {
    /// Initialises (first time) and starts the cluster under `root`, with the
    /// programs in `bin_dir` or, when `None`, the ones found on the system.
    pub fn start(root: &Path, bin_dir: Option<&Path>) -> Result<Self, LocalPostgresError> {
        let bin_dir = match bin_dir {
            Some(dir) if has_server_programs(dir) => dir.to_path_buf(),
            Some(dir) => {
                return Err(LocalPostgresError::MissingBinariesIn {
                    path: dir.to_path_buf(),
                });
            }
            None => find_bin_dir().ok_or(LocalPostgresError::MissingBinaries)?,
        };
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(LocalPostgresError::NoUnprivilegedUser)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let cluster = Self {
            bin_dir,
            data: root.join("pg"),
            socket_dir: socket_dir_for(root),
            run_as,
        };
        if run_as.is_some() {
            // The postgres user must be able to walk into the data dir; the
            // files in it that matter (secret key, setup link) are 0600.
            set_mode(root, 0o711)?;
        }
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        cluster.prepare_dir(&cluster.socket_dir)?;
        cluster.write_settings()?;
        if cluster.is_running() {
            tracing::warn!(data = %cluster.data.display(), "private PostgreSQL was already running (left over from an unclean exit); reusing it");
        } else {
            cluster.pg_ctl_start()?;
        }
        Ok(cluster)
    }

    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Creates the portal's database unless it exists.
    pub async fn ensure_database(&self) -> Result<(), sqlx::Error> {
        use sqlx::ConnectOptions;
        let mut conn = self.connect_options("postgres").connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Stops the cluster with a fast shutdown: open sessions are closed,
    /// everything committed is on disk.
    pub fn stop(&self) {
        let out = self.run(
            "pg_ctl",
            [
                OsStr::new("stop"),
                OsStr::new("-D"),
                self.data.as_os_str(),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
            ],
        );
        match out {
            Ok(o) if o.status.success() => tracing::info!("private PostgreSQL stopped"),
            Ok(o) => tracing::warn!(detail = %last_line(&o), "stopping private PostgreSQL failed"),
            Err(e) => tracing::warn!(error = %e, "stopping private PostgreSQL failed"),
        }
    }

    fn initdb(&self) -> Result<(), LocalPostgresError> {
        tracing::info!(data = %self.data.display(), "initialising private PostgreSQL cluster");
        self.prepare_dir(&self.data)?;
        let result = self.run(
            "initdb",
            [
                OsStr::new("-D"),
                self.data.as_os_str(),
                OsStr::new("-U"),
                OsStr::new(SUPERUSER),
                OsStr::new("--auth=trust"),
                OsStr::new("--encoding=UTF8"),
                OsStr::new("--locale=C"),
                OsStr::new("--no-instructions"),
            ],
        );
        let failure = match result {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(last_line(&o)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = failure {
            // Leave nothing half-made: the next start tries again from scratch.
            let _ = fs::remove_dir_all(&self.data);
            return Err(LocalPostgresError::Initdb {
                path: self.data.clone(),
                detail,
            });
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).map_err(|source| LocalPostgresError::Io {
            path: conf.clone(),
            source,
        })?;
        text.push_str("\n# Written on every start by the Loopback portal.\ninclude_if_exists = 'loopback.conf'\n");
        fs::write(&conf, text).map_err(|source| LocalPostgresError::Io { path: conf, source })
    }

    /// Settings that depend on where the cluster lives now; rewritten on every
    /// start so that a moved checkout keeps working.
    fn write_settings(&self) -> Result<(), LocalPostgresError> {
        let path = self.data.join("loopback.conf");
        let socket = self.socket_dir.display().to_string().replace('\'', "''");
        let text = format!(
            "listen_addresses = ''\nport = {PORT}\nunix_socket_directories = '{socket}'\nunix_socket_permissions = 0700\n"
        );
        fs::write(&path, text).map_err(|source| LocalPostgresError::Io {
            path: path.clone(),
            source,
        })?;
        self.give_to_run_as(&path)
    }

    fn is_running(&self) -> bool {
        self.run(
            "pg_ctl",
            [
                OsStr::new("status"),
                OsStr::new("-D"),
                self.data.as_os_str(),
            ],
        )
        .map(|o| o.status.success())
        .unwrap_or(false)
    }

    fn pg_ctl_start(&self) -> Result<(), LocalPostgresError> {
        let log = self.data.join("server.log");
        let out = self.run(
            "pg_ctl",
            [
                OsStr::new("start"),
                OsStr::new("-D"),
                self.data.as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
            ],
        );
        let detail = match out {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => last_line(&o),
            Err(e) => e.to_string(),
        };
        Err(LocalPostgresError::Start {
            path: self.data.clone(),
            log,
            detail,
        })
    }

    fn prepare_dir(&self, dir: &Path) -> Result<(), LocalPostgresError> {
        fs::create_dir_all(dir).map_err(|source| LocalPostgresError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        set_mode(dir, 0o700)?;
        self.give_to_run_as(dir)
    }

    fn give_to_run_as(&self, path: &Path) -> Result<(), LocalPostgresError> {
        if let Some((uid, gid)) = self.run_as {
            chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(|source| {
                LocalPostgresError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    fn run<I, S>(&self, program: &str, args: I) -> std::io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let cwd = if self.data.is_dir() {
            self.data.as_path()
        } else {
            Path::new("/")
        };
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args)
            .current_dir(cwd)
            // Ctrl-C in the terminal reaches the portal, which then stops
            // PostgreSQL in order; PostgreSQL itself must not see it.
            .process_group(0)
            .env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd.output()
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| has_server_programs(dir)));
    if on_path.is_some() {
        return on_path;
    }
    // Debian keeps the server programs off PATH.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server_programs(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn has_server_programs(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// `<root>/run`, or a private directory under /tmp when that path would be
/// too long for a Unix socket.
fn socket_dir_for(root: &Path) -> PathBuf {
    let preferred = root.join("run");
    let socket_file_len = preferred.as_os_str().len() + "/.s.PGSQL.5432".len();
    if socket_file_len <= MAX_SOCKET_PATH {
        return preferred;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    std::env::temp_dir().join(format!("loopback-pg-{:016x}", hasher.finish()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LocalPostgresError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
        LocalPostgresError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn last_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exit status {}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_roots_get_a_short_socket_dir() {
        let short = socket_dir_for(Path::new("/srv/lb"));
        assert_eq!(short, PathBuf::from("/srv/lb/run"));
        let long_root = PathBuf::from(format!("/{}", "x".repeat(120)));
        let long = socket_dir_for(&long_root);
        assert!(long.as_os_str().len() + 14 <= MAX_SOCKET_PATH);
        assert_eq!(long, socket_dir_for(&long_root), "stable across starts");
    }
}
