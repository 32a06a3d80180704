//! A private PostgreSQL cluster for the tests: `initdb` into a temp folder, the server a child
//! of this process on `127.0.0.1:<free port>` (run as the `postgres` user when the tests run
//! as root, since PostgreSQL refuses root), trust authentication on loopback only. The server
//! is started through `setpriv --pdeathsig KILL`, from a thread that lives as long as the test
//! process, so it dies with the process; folders of earlier runs are removed at the next.
//!
//! Where PostgreSQL is not installed, [`available`] says why and the PostgreSQL tests skip;
//! in CI (`CI=true`) they fail instead (`.ci/run` installs it).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The server binaries (`initdb`, `postgres`, `psql`): `DECONFLICTION_PG_BIN`, or the newest
/// under /usr/lib/postgresql.
pub fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DECONFLICTION_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// Whether the PostgreSQL tests can run here; prints why not (and panics in CI).
pub fn available(test: &str) -> bool {
    if bin_dir().is_some() {
        return true;
    }
    let why =
        "PostgreSQL is not installed (apt-get install postgresql, or set DECONFLICTION_PG_BIN)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}; CI must run the PostgreSQL tests"
    );
    eprintln!("skipping {test}: {why}");
    false
}

/// uid and gid of the `postgres` account, when running as root.
fn run_as() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn command(bin: &Path, name: &str) -> Command {
    let mut c = Command::new(bin.join(name));
    if let Some((uid, gid)) = run_as() {
        c.uid(uid).gid(gid);
    }
    c.env("LC_ALL", "C").stdin(Stdio::null());
    c
}

/// One cluster: its folder, port and (while running) its server process.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    server: Mutex<Option<Child>>,
    /// `postgresql.conf` lines added at creation.
    pub extra_conf: String,
}

impl Cluster {
    /// Creates a cluster (initdb) with `extra_conf` appended to its configuration, and starts it.
    pub fn create(extra_conf: &str) -> Self {
        let bin = bin_dir().expect("PostgreSQL binaries");
        let dir = cluster_dir();
        let data = dir.path().join("data");
        let out = command(&bin, "initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .arg("--no-sync")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = on\n\
             max_connections = 400\nshared_buffers = 32MB\n{extra_conf}\n",
            dir.path().display()
        );
        let path = data.join("postgresql.conf");
        let mut all = std::fs::read_to_string(&path).unwrap();
        all.push_str(&conf);
        std::fs::write(&path, all).unwrap();
        let cluster = Self {
            dir,
            port: crate::free_port(),
            bin,
            server: Mutex::new(None),
            extra_conf: extra_conf.to_string(),
        };
        cluster.start();
        cluster
    }

    /// A streaming standby of `primary` (pg_basebackup), started on a port of its own. Give
    /// the primary `synchronous_standby_names = '*'` to make its commits wait for it.
    pub fn standby_of(primary: &Cluster) -> Self {
        let dir = cluster_dir();
        let data = dir.path().join("data");
        let out = primary
            .bin("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Its own socket folder (the primary's configuration was copied along).
        let path = data.join("postgresql.conf");
        let mut all = std::fs::read_to_string(&path).unwrap();
        all.push_str(&format!(
            "\nunix_socket_directories = '{}'\ncluster_name = 'standby'\n",
            dir.path().display()
        ));
        std::fs::write(&path, all).unwrap();
        let standby = Self {
            dir,
            port: crate::free_port(),
            bin: primary.bin.clone(),
            server: Mutex::new(None),
            extra_conf: primary.extra_conf.clone(),
        };
        standby.start();
        standby
    }

    /// Promotes a standby to primary and waits until it takes writes.
    pub fn promote(&self) {
        self.psql("postgres", "SELECT pg_promote(true, 60)")
            .unwrap();
        self.wait_for("the standby's promotion", || {
            self.psql("postgres", "SELECT pg_is_in_recovery()")
                .as_deref()
                == Ok("f")
        });
    }

    /// Waits up to a minute for `done`; fails with the server's log.
    fn wait_for(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn bin(&self, name: &str) -> Command {
        command(&self.bin, name)
    }

    /// Starts the server (again) on the same port and waits until it takes connections.
    pub fn start(&self) {
        let mut slot = self.server.lock().unwrap();
        assert!(slot.is_none(), "already running");
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL"]);
        if let Some((uid, gid)) = run_as() {
            c.args([format!("--reuid={uid}"), format!("--regid={gid}")])
                .arg("--init-groups");
        }
        c.arg(self.bin.join("postgres"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-p",
                &self.port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("server.log"))
                    .unwrap(),
            ));
        // The death signal follows the *thread* that forked: fork from one that lives as long
        // as the test process.
        let child = keeper().spawn(c);
        *slot = Some(child);
        drop(slot);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        self.wait_for("PostgreSQL's start", || {
            self.psql("postgres", "SELECT 1").is_ok()
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server at once (no shutdown: what a crash or a pulled cable looks like).
    pub fn kill(&self) {
        if let Some(mut child) = self.server.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
            // Its backends notice the postmaster died and leave within a moment.
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Runs one SQL statement with psql; its output, or why it failed.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .bin("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// A new, empty database; its connection string.
    pub fn database(&self) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?connect_timeout=5",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The cluster this test process shares between its tests (each takes its own database).
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::create(""))
}

/// A new folder for a cluster, named after this process and owned by the server's user
/// (folders of processes that are gone are removed first).
fn cluster_dir() -> tempfile::TempDir {
    let parent = std::env::temp_dir().join("deconfliction-pg");
    std::fs::create_dir_all(&parent).unwrap();
    remove_stale(&parent);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&parent)
        .unwrap();
    if let Some((uid, gid)) = run_as() {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    dir
}

/// Removes the cluster folders of test processes that are gone (a static cluster is never
/// dropped; its server died with its process, its folder stays until here).
fn remove_stale(parent: &Path) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Points `config` at a fresh database of the shared cluster, the connection string in a 0600
/// file in `dir`. Returns the connection string.
pub fn use_postgres(config: &mut deconflict_broker::config::BrokerConfig, dir: &Path) -> String {
    let url = shared().database();
    point_at(config, dir, &url);
    url
}

/// Points `config` at the database `url` (written to a file in `dir`).
pub fn point_at(config: &mut deconflict_broker::config::BrokerConfig, dir: &Path, url: &str) {
    let file = dir.join(format!("database-url-{}", crate::free_port()));
    std::fs::write(&file, url).unwrap();
    config.store.backend = deconflict_broker::config::StoreBackend::Postgres;
    config.store.postgres.url_file = Some(file);
    config.store.postgres.url_env = None;
}

/// Whether a test that picks its backend itself should skip: not installed here (said, and
/// refused in CI), or the suite's second pass (everything on PostgreSQL), which has nothing to
/// add to it.
pub fn skip_test(test: &str) -> bool {
    suite_on_postgres() || !available(test)
}

/// A federation whose broker runs on a fresh database of the shared cluster (the connection
/// string's file in `url_dir`).
pub async fn federation(agencies: &[&str], url_dir: &Path) -> crate::Federation {
    let dir = url_dir.to_path_buf();
    crate::Federation::start_with(agencies, move |c| {
        use_postgres(c, &dir);
    })
    .await
}

/// Why a broker with `config` does not start (fails the test if it does).
pub async fn start_error(config: &deconflict_broker::config::BrokerConfig) -> String {
    match deconflict_broker::server::start(config, deconflict_broker::server::Mode::Broker).await {
        Ok(_) => panic!("the broker started"),
        Err(e) => e.to_string(),
    }
}

/// Whether this run of the suite uses PostgreSQL for every broker it starts
/// (`DECONFLICTION_TEST_BACKEND=postgres`, the second pass of `.ci/run`).
pub fn suite_on_postgres() -> bool {
    std::env::var("DECONFLICTION_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A thread that lives as long as the process and forks the servers.
struct Keeper {
    tx: Mutex<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<Child>)>>,
}

impl Keeper {
    fn spawn(&self, command: Command) -> Child {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.lock().unwrap().send((command, tx)).unwrap();
        rx.recv().unwrap()
    }
}

fn keeper() -> &'static Keeper {
    static KEEPER: OnceLock<Keeper> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<Child>)>();
        std::thread::spawn(move || {
            while let Ok((mut command, reply)) = rx.recv() {
                let child = command.spawn().expect("start postgres");
                let _ = reply.send(child);
            }
            // Never returns while the process lives (the sender is in a static).
        });
        Keeper { tx: Mutex::new(tx) }
    })
}
