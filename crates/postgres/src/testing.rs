//! Throwaway PostgreSQL databases for tests.
//!
//! The server is `TEST_DATABASE_URL` when set; otherwise one cluster per test process, started
//! from the PostgreSQL server binaries into a temporary directory and stopped when the process
//! ends. Each test gets its own database, cloned from a template migrated once per schema
//! version, and dropped (`WITH (FORCE)`) when its [`TestDatabase`] is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::{PgSettings, PgStore};

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
            wait_timeout: Duration::from_secs(5),
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
    let template = format!("iot_tpl_{:016x}", crate::schema_fingerprint());
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
        crate::migrate(&config)
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

fn start_cluster() -> String {
    let bin = postgres_bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them \
             (`apt-get install postgresql`), point PG_BIN at their directory, or set \
             TEST_DATABASE_URL to a server the tests may create databases on."
        )
    });
    let as_root = running_as_root();
    let dir = std::env::temp_dir().join(format!("iot-api-test-pg-{}", std::process::id()));
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
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
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
    let mut start = pg_command(&bin, "pg_ctl", as_root);
    start
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-o", &options, "start"]);
    run(start, "pg_ctl start");

    // Stop the cluster and remove it once this test process is gone.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runuser}{pg_ctl} -D {data} -m immediate stop; rm -rf {dir}",
        pid = std::process::id(),
        runuser = if as_root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    // Deliberately not waited for: it must outlive this process.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the cluster watchdog");

    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

#[cfg(test)]
mod tests {
    use super::with_database;

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
}
