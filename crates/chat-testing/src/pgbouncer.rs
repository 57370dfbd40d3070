//! A PgBouncer in transaction pooling mode in front of the test server.
//!
//! [`PgBouncer::shared`] starts one per test process (Debian's `pgbouncer`
//! package; `.ci/run` installs it) on a free port of 127.0.0.1 with
//! `pool_mode = transaction` and `ignore_startup_parameters =
//! extra_float_digits`, in front of the server [`crate::server_url`] names.
//! Every database of that server is reachable through it under its own name
//! ([`PgBouncer::url_for`]). A missing binary fails the test with instructions;
//! nothing is skipped.
//!
//! PgBouncer runs under a small `sh` wrapper that stops it when its standard
//! input closes: on `Drop`, and also when the test process exits without
//! dropping it (a shared instance lives in a `static`).

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use url::Url;

/// A running PgBouncer, stopped on `Drop`.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    /// Closing it stops PgBouncer (see the module documentation).
    stdin: Option<ChildStdin>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// The process's PgBouncer, started on first use.
    ///
    /// # Panics
    /// When `pgbouncer` is not installed or does not start.
    pub async fn shared() -> &'static Self {
        static BOUNCER: OnceCell<PgBouncer> = OnceCell::const_new();
        BOUNCER.get_or_init(Self::start).await
    }

    /// Starts a PgBouncer of its own in front of the test server.
    ///
    /// # Panics
    /// When `pgbouncer` is not installed or does not start.
    pub async fn start() -> Self {
        let server = crate::server_url().await;
        let binary = binary().unwrap_or_else(|| {
            panic!(
                "\n\npgbouncer is not installed; the tests run the HTTP suite through it.\n\
                 Install Debian's package:  apt-get install -y pgbouncer\n\
                 (.ci/run installs it when missing)\n\n"
            )
        });
        tokio::task::spawn_blocking(move || Self::spawn(&binary, &server))
            .await
            .expect("starting pgbouncer")
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `database_url` (a URL of the test server) through this PgBouncer: the
    /// same user, password and database, PgBouncer's host and port.
    ///
    /// # Panics
    /// When `database_url` is not a URL.
    pub fn url_for(&self, database_url: &str) -> String {
        let mut url = Url::parse(database_url).expect("a database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.port)).expect("a port");
        url.to_string()
    }

    /// PgBouncer's own log (its standard error), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    fn spawn(binary: &Path, server: &str) -> Self {
        let server = Url::parse(server).expect("the test server's URL");
        let dir = tempfile::tempdir().expect("a temporary directory for pgbouncer");
        let port = free_port();
        let user = match server.username() {
            "" => "postgres",
            user => user,
        };
        let mut target = format!(
            "host={} port={}",
            server.host_str().unwrap_or("127.0.0.1"),
            server.port().unwrap_or(5432)
        );
        if let Some(password) = server.password() {
            target.push_str(&format!(" user={user} password={password}"));
        }
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("users.txt");
        write_readable(&users, &format!("\"{user}\" \"\"\n"));
        write_readable(
            &ini,
            &format!(
                "[databases]\n\
                 * = {target}\n\
                 \n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {users}\n\
                 pool_mode = transaction\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 max_client_conn = 2000\n\
                 default_pool_size = 10\n\
                 server_idle_timeout = 10\n",
                users = users.display()
            ),
        );
        // PgBouncer refuses to run as root: it switches to `postgres` then,
        // which must be able to read the files.
        let _ = std::fs::set_permissions(dir.path(), permissions(0o755));
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        let switch_user = if as_root { "-u postgres" } else { "" };
        let log = std::fs::File::create(dir.path().join("pgbouncer.log")).expect("a log file");
        let script = format!(
            "\"$0\" {switch_user} \"$1\" & pid=$!\n\
             read -r _\n\
             kill \"$pid\" 2>/dev/null\n\
             wait \"$pid\""
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(binary)
            .arg(&ini)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .expect("sh starts");
        let stdin = child.stdin.take();
        let mut bouncer = Self {
            child,
            stdin,
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return bouncer;
            }
            let exited = bouncer.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "pgbouncer did not start on 127.0.0.1:{port} ({exited:?}); its log:\n{}",
                    bouncer.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

/// `pgbouncer` on `PATH`, or where Debian puts it (`/usr/sbin`, often not on
/// a non-root `PATH`).
fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

fn write_readable(path: &Path, contents: &str) {
    std::fs::write(path, contents).expect("writing pgbouncer's configuration");
    let _ = std::fs::set_permissions(path, permissions(0o644));
}

fn permissions(mode: u32) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(mode)
}
