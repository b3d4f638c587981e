//! A pseudo-terminal with a login shell on its slave side.
//!
//! Built on nix rather than portable-pty: the master is a non-blocking fd
//! driven by tokio's reactor, so a session costs no blocking threads and
//! reads can be cancelled, and the workspace compiles one nix version only.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};

/// A running shell and the master side of its terminal.
pub struct Pty {
    pub master: AsyncFd<OwnedFd>,
    pub child: Child,
}

/// Starts `program` (or the user's login shell) as a login shell on a new
/// terminal of `cols`×`rows`.
pub fn spawn(program: Option<&Path>, cols: u16, rows: u16) -> io::Result<Pty> {
    // CLOEXEC from the start: commands forked concurrently must not inherit
    // the master, or the shell would never see its terminal hang up.
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave_path = ptsname_r(&master)?;
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)?;
    let master: OwnedFd = master.into();
    resize(&master, cols, rows)?;

    let (shell, home) = login_shell();
    let program = program.map(Path::to_path_buf).unwrap_or(shell);
    let mut cmd = Command::new(&program);
    cmd.arg("-l")
        .current_dir(&home)
        .env("HOME", &home)
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .stdin(Stdio::from(OwnedFd::from(slave.try_clone()?)))
        .stdout(Stdio::from(OwnedFd::from(slave.try_clone()?)))
        .stderr(Stdio::from(OwnedFd::from(slave)));
    if std::env::var_os("LANG").is_none() && std::env::var_os("LC_ALL").is_none() {
        cmd.env("LANG", "C.UTF-8").env("LC_ALL", "C.UTF-8");
    }
    for var in crate::update::INTERNAL_ENV {
        cmd.env_remove(var);
    }
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setsid and ioctl are plain syscalls) and nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own with the terminal as its controlling tty,
            // so job control works and a hangup reaches the shell.
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|err| {
        io::Error::new(err.kind(), format!("starting {}: {err}", program.display()))
    })?;
    // The command keeps its copies of the slave until dropped; the master
    // only reads EIO (the shell is gone) once every slave fd is closed.
    drop(cmd);
    // SAFETY: the OwnedFd moves into the AsyncFd, which owns it (and so
    // keeps it open and unchanged) until the AsyncFd is dropped.
    let master = unsafe { AsyncFd::register(master) }.map_err(|err| err.into_parts().1)?;
    Ok(Pty { master, child })
}

/// The user's shell and home: `$SHELL`/`$HOME`, else the passwd entry,
/// else `/bin/sh` and `/`.
pub fn login_shell() -> (PathBuf, PathBuf) {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten();
    let non_empty = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
    let shell = non_empty(std::env::var_os("SHELL"))
        .or_else(|| {
            user.as_ref()
                .map(|u| u.shell.clone())
                .filter(|s| !s.as_os_str().is_empty())
        })
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let home = non_empty(std::env::var_os("HOME"))
        .or_else(|| user.as_ref().map(|u| u.dir.clone()).filter(|d| d.is_dir()))
        .unwrap_or_else(|| PathBuf::from("/"));
    (shell, home)
}

pub fn resize(master: &impl AsFd, cols: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is valid
    // for the duration of the call.
    let rc = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads what the terminal has, up to `buf.len()`: waits for the first
/// bytes, then takes whatever else is already there so fast output travels
/// in large chunks. `Ok(0)` once the slave side is closed for good.
pub async fn read(master: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let mut ready = master.readable().await?;
        match ready.try_io(|fd| {
            nix::unistd::read(fd.get_ref(), &mut buf[filled..]).map_err(io::Error::from)
        }) {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => filled += n,
            // Linux reports a hung-up terminal (every slave fd closed) as EIO.
            Ok(Err(err)) if err.raw_os_error() == Some(Errno::EIO as i32) => break,
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(err)) => return if filled > 0 { Ok(filled) } else { Err(err) },
            Err(_would_block) if filled > 0 => break,
            Err(_would_block) => {}
        }
    }
    Ok(filled)
}

pub async fn write_all(master: &AsyncFd<OwnedFd>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut ready = master.writable().await?;
        match ready.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(err)) => return Err(err),
            Err(_would_block) => {}
        }
    }
    Ok(())
}
