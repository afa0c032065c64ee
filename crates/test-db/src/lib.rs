//! Throwaway PostgreSQL databases for tests (a dev-dependency only: no production crate links
//! it).
//!
//! The server is `TEST_DATABASE_URL` when set; otherwise one cluster per test process, started
//! from the PostgreSQL server binaries into a temporary directory and stopped when the process
//! ends. Each test gets its own database, cloned from a template migrated once per schema
//! version, and dropped (`WITH (FORCE)`) when its [`TestDatabase`] is dropped.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::NoTls;

use store_postgres::{PgSettings, PgStore};

/// Advisory lock key serialising template creation across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x0069_6f74_5f74_706c; // "iot_tpl"

/// One test's private database.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A fresh, migrated, empty database.
    ///
    /// # Panics
    /// When no PostgreSQL server can be found or started; the message says what to install.
    pub async fn create() -> Self {
        let admin_url = server_url().to_owned();
        let template = ensure_template(&admin_url).await;
        let name = format!("iot_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        // The template may still show the session that migrated it for a moment.
        for attempt in 0.. {
            match admin
                .batch_execute(&format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                ))
                .await
            {
                Ok(()) => break,
                Err(e)
                    if attempt < 50
                        && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("failed to create test database {name}: {e}"),
            }
        }
        let url = with_database(&admin_url, &name);
        Self {
            name,
            url,
            admin_url,
        }
    }

    /// The connection string of this database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store on this database, with a small pool.
    ///
    /// # Panics
    /// When the store cannot connect.
    pub async fn store(&self) -> PgStore {
        PgStore::connect(&PgSettings {
            url: self.url.clone(),
            pool_size: 4,
            workers: 1,
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        })
        .await
        .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        // Drop runs inside or outside a runtime; a thread of its own works in both.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop test database: {e}");
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("failed to connect to the test PostgreSQL server: {e}"));
    tokio::spawn(connection);
    client
}

/// Creates (once per schema version, under a lock) the migrated template and returns its name.
async fn ensure_template(admin_url: &str) -> String {
    let template = format!("iot_tpl_{:016x}", store_postgres::schema_fingerprint());
    let admin = connect(admin_url).await;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("take the template lock");
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("look up the template")
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        // Separate statements: CREATE/DROP DATABASE refuse to run in a multi-statement batch.
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await
            .expect("drop a leftover template database");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create the template database");
        let config = with_database(admin_url, &building)
            .parse()
            .expect("valid template URL");
        store_postgres::migrate(&config)
            .await
            .expect("migrate the template database");
        // Renamed only once complete, so a crash never leaves a half-migrated template behind.
        for attempt in 0.. {
            match admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
                ))
                .await
            {
                Ok(()) => break,
                Err(_) if attempt < 50 => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("failed to finish the template database: {e}"),
            }
        }
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("release the template lock");
    template
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        panic!("TEST_DATABASE_URL must be a postgres:// URL, got a key=value string");
    };
    let authority_start = scheme_end + 3;
    let (base, query) = match url[authority_start..].find(['/', '?']) {
        Some(i) => {
            let split = authority_start + i;
            let query = url[split..].find('?').map_or("", |q| &url[split + q..]);
            (&url[..split], query)
        }
        None => (url, ""),
    };
    format!("{base}/{database}{query}")
}

/// The admin URL of the test server, starting one if needed.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_cluster(),
    })
}

fn postgres_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        dir.join("initdb").exists().then_some(dir)
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(bin: &Path, program: &str, as_root: bool) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("failed to run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn find_postgres_bin_dir() -> PathBuf {
    postgres_bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them \
             (`apt-get install postgresql`), point PG_BIN at their directory, or set \
             TEST_DATABASE_URL to a server the tests may create databases on."
        )
    })
}

/// A cluster directory made and initialised (`initdb`), with the port and server options chosen
/// for it: what `pg_ctl start` needs.
struct ClusterLayout {
    bin: PathBuf,
    as_root: bool,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    options: String,
}

impl ClusterLayout {
    /// Creates `dir` (emptied first) and runs `initdb` in it; picks a free port.
    fn init(dir: PathBuf) -> Self {
        let bin = find_postgres_bin_dir();
        let as_root = running_as_root();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        if as_root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(&dir);
                    c
                },
                "chown of the cluster directory to postgres",
            );
        }
        let data = dir.join("data");
        let mut initdb = pg_command(&bin, "initdb", as_root);
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb");

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("find a free port");
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            dir.display()
        );
        Self {
            bin,
            as_root,
            dir,
            data,
            port,
            options,
        }
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn start(&self) {
        let mut start = pg_command(&self.bin, "pg_ctl", self.as_root);
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-o", &self.options, "start"]);
        run(start, "pg_ctl start");
    }

    /// `pg_ctl stop` in `mode` (`fast`, `immediate`), waiting until the server is gone.
    fn stop_command(&self, mode: &str) -> Command {
        let mut stop = pg_command(&self.bin, "pg_ctl", self.as_root);
        stop.arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", mode, "stop"]);
        stop
    }

    /// A shell process that, once this test process is gone (or the cluster directory is, when
    /// `until_removed`), wakes the cluster should it be frozen, stops it and removes its
    /// directory. It must outlive this process, so it is not waited for here.
    fn spawn_watchdog(&self, until_removed: bool) -> std::process::Child {
        let data = self.data.display();
        let dir = self.dir.display();
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null{also}; do sleep 1; done; \
             if [ -d {data} ]; then \
             pm=$(head -n 1 {data}/postmaster.pid 2>/dev/null); \
             if [ -n \"$pm\" ]; then kill -CONT $pm $(pgrep -P $pm) 2>/dev/null; fi; \
             {runuser}{pg_ctl} -D {data} -m immediate stop; fi; rm -rf {dir}",
            pid = std::process::id(),
            also = if until_removed {
                format!(" && [ -d {dir} ]")
            } else {
                String::new()
            },
            runuser = if self.as_root {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl = self.bin.join("pg_ctl").display(),
        );
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the cluster watchdog")
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

fn start_cluster() -> String {
    let layout = ClusterLayout::init(
        std::env::temp_dir().join(format!("iot-api-test-pg-{}", std::process::id())),
    );
    layout.start();
    // Stop the cluster and remove it once this test process is gone. Deliberately not waited
    // for: it must outlive this process.
    #[allow(clippy::zombie_processes)]
    let _watchdog = layout.spawn_watchdog(false);
    layout.admin_url()
}

/// A PostgreSQL cluster of one test's own, to break on purpose: stop and start it, freeze and
/// thaw it. It lives in a temporary directory of its own, listens on a free port of its own,
/// and is stopped and removed when dropped, or by a watchdog when the test process dies first.
/// Unlike [`TestDatabase`], it ignores `TEST_DATABASE_URL`: faults cannot be injected into a
/// shared server.
pub struct Cluster {
    layout: ClusterLayout,
    watchdog: Option<std::process::Child>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.layout.dir)
            .field("port", &self.layout.port)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Initialises and starts a new cluster. Blocking (`initdb` takes a second or two).
    ///
    /// # Panics
    /// When the PostgreSQL server binaries cannot be found or the cluster does not start.
    #[must_use]
    pub fn start_new() -> Self {
        let layout = ClusterLayout::init(std::env::temp_dir().join(format!(
            "iot-api-test-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        )));
        // The watchdog first: whatever happens from here on, the cluster does not outlive us.
        let watchdog = Some(layout.spawn_watchdog(true));
        let cluster = Self { layout, watchdog };
        cluster.layout.start();
        cluster
    }

    /// The admin URL, to the database `postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        self.layout.admin_url()
    }

    /// The port the cluster listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.layout.port
    }

    /// Creates the database `name` and returns its URL.
    ///
    /// # Panics
    /// When the cluster does not answer or refuses.
    pub async fn create_database(&self, name: &str) -> String {
        let admin = connect(&self.url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("failed to create database {name}: {e}"));
        with_database(&self.url(), name)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, committed work is kept),
    /// waiting until it is gone. Blocking.
    ///
    /// # Panics
    /// When `pg_ctl` fails (the server is not running, say).
    pub fn stop(&self) {
        run(self.layout.stop_command("fast"), "pg_ctl stop -m fast");
    }

    /// Starts the server again, on the same data directory and port, waiting until it accepts
    /// connections. Blocking.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn start(&self) {
        self.layout.start();
    }

    /// Suspends the postmaster and every process it has started (SIGSTOP): connections are
    /// accepted by the kernel and queries are sent, but nothing answers. Undo with
    /// [`Cluster::thaw`] (dropping the cluster thaws it too).
    ///
    /// # Panics
    /// When the server is not running or a signal cannot be sent.
    pub fn freeze(&self) {
        let postmaster = self.postmaster_pid();
        // The postmaster first, so that it starts no process we would miss.
        signal("STOP", std::slice::from_ref(&postmaster));
        let children = children_of(&postmaster).expect("run pgrep");
        if !children.is_empty() {
            signal("STOP", &children);
        }
    }

    /// Resumes the processes [`Cluster::freeze`] suspended (SIGCONT).
    ///
    /// # Panics
    /// When the server is not running or a signal cannot be sent.
    pub fn thaw(&self) {
        let postmaster = self.postmaster_pid();
        let mut pids = children_of(&postmaster).expect("run pgrep");
        pids.push(postmaster);
        signal("CONT", &pids);
    }

    /// The first line of `postmaster.pid`.
    fn postmaster_pid(&self) -> String {
        let file = self.layout.data.join("postmaster.pid");
        let contents = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "cannot read {} (is the server running?): {e}",
                file.display()
            )
        });
        let pid = contents
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
            "{} does not start with a pid: {contents:?}",
            file.display()
        );
        pid
    }
}

/// The pids of `parent`'s child processes (`pgrep -P`).
fn children_of(parent: &str) -> std::io::Result<Vec<String>> {
    let output = Command::new("pgrep")
        .args(["-P", parent])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    // pgrep exits with 1 when nothing matches.
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// `kill -<name> <pids>`.
fn signal(name: &str, pids: &[String]) {
    let mut kill = Command::new("kill");
    kill.arg(format!("-{name}")).args(pids);
    run(kill, &format!("kill -{name}"));
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Thawed first: a suspended postmaster would not act on the stop request. Errors are
        // ignored (the server may already be stopped), and nothing here may panic.
        if let Ok(contents) = std::fs::read_to_string(self.layout.data.join("postmaster.pid")) {
            if let Some(pid) = contents.lines().next().map(str::trim) {
                if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                    let mut pids = children_of(pid).unwrap_or_default();
                    pids.push(pid.to_owned());
                    let _ = Command::new("kill")
                        .arg("-CONT")
                        .args(&pids)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = self
            .layout
            .stop_command("immediate")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = std::fs::remove_dir_all(&self.layout.dir) {
            eprintln!(
                "warning: could not remove {}: {e}",
                self.layout.dir.display()
            );
        }
        // Its directory is gone, so the watchdog would end within a second; end it now.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{connect, with_database, Cluster};

    #[test]
    fn the_database_name_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_private_cluster_stops_starts_freezes_and_thaws() {
        let cluster = tokio::task::block_in_place(Cluster::start_new);
        let url = cluster.create_database("app").await;
        let client = connect(&url).await;
        client
            .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
            .await
            .unwrap();

        // Frozen: a query gets no answer; thawed, it gets one.
        tokio::task::block_in_place(|| cluster.freeze());
        let frozen =
            tokio::time::timeout(Duration::from_millis(500), client.simple_query("SELECT 1")).await;
        assert!(frozen.is_err(), "a frozen cluster answered");
        tokio::task::block_in_place(|| cluster.thaw());
        let thawed =
            tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1")).await;
        assert!(matches!(thawed, Ok(Ok(_))), "{thawed:?}");

        // Stopped: nothing connects; started again: the data is still there.
        tokio::task::block_in_place(|| cluster.stop());
        assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err());
        tokio::task::block_in_place(|| cluster.start());
        let client = connect(&url).await;
        let row = client.query_one("SELECT x FROM t", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);

        // Dropped (frozen, even): stopped and removed at once.
        tokio::task::block_in_place(|| cluster.freeze());
        let dir = cluster.layout.dir.clone();
        let dropped = Instant::now();
        tokio::task::block_in_place(|| drop(cluster));
        assert!(dropped.elapsed() < Duration::from_secs(10));
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err());
    }
}
