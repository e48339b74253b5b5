//! nginx as the origin: [`Origin`] (a folder served with Range, ETags and a WebDAV inbox) and
//! [`LegacyNginx`] (nginx's own `secure_link`, for migration tests), with their start and stop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::{free_port, wait_for_port};

/// nginx serving `root` on a free port.
pub struct Origin {
    pub port: u16,
    pub root: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

impl Origin {
    pub fn start() -> Origin {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).expect("www");
        // nginx workers may run as `nobody`: let them read the tree.
        for p in [dir.path(), root.as_path()] {
            let _ = Command::new("chmod").arg("755").arg(p).status();
        }
        let port = free_port();
        let body = format!(
            r#"    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        add_header Set-Cookie "origin_session=secret; Path=/";
        location = /echo-headers {{
            default_type text/plain;
            return 200 "cookie=[$http_cookie] authorization=[$http_authorization] x-origin-auth=[$http_x_origin_auth] host=[$host] uri=[$request_uri]";
        }}
        location = /teapot {{ return 500 "nginx internals"; }}
        # Uploads through links land here: nginx's DAV module writes a PUT body to a temporary
        # file and renames it into place only when the body is complete.
        location /inbox/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
        }}
    }}"#,
            root = root.display()
        );
        let child = start_nginx(dir.path(), &body, port);
        Origin {
            port,
            root,
            dir,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Writes a file under the origin's root (folders created), readable by nginx.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.root.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
            let _ = Command::new("chmod")
                .arg("-R")
                .arg("a+rX")
                .arg(&self.root)
                .status();
        }
        std::fs::write(&path, bytes).expect("write");
        let _ = Command::new("chmod").arg("a+r").arg(&path).status();
    }
}

/// Starts Debian's nginx with `http_body` inside `http { }`; returns the child (killed by the caller).
pub fn start_nginx(dir: &Path, http_body: &str, port: u16) -> Child {
    let user = if unsafe_is_root() {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
{http_body}
}}
"#,
        d = dir.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nginx");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx must be installed (apt-get install nginx-light)");
    wait_for_port(port, "nginx");
    child
}

/// nginx's own `secure_link` module in front of a folder, configured as an operator migrating to
/// linkgate would have it: `/dl/` with `secure_link` + `secure_link_md5` (403 for a bad hash, 410
/// for an expired link) and `/p/` with `secure_link_secret`.
pub struct LegacyNginx {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl LegacyNginx {
    /// `md5` is the `secure_link_md5` expression, `secret` the `secure_link_secret` word.
    pub fn start(root: &Path, md5: &str, secret: &str) -> LegacyNginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let port = free_port();
        let body = format!(
            r#"    server {{
        listen 127.0.0.1:{port};
        location /dl/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "{md5}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {root}/;
        }}
        location /p/ {{
            secure_link_secret {secret};
            if ($secure_link = "") {{ return 403; }}
            rewrite ^ /files/$secure_link;
        }}
        location /files/ {{
            internal;
            alias {root}/;
        }}
    }}"#,
            root = root.display()
        );
        let child = start_nginx(dir.path(), &body, port);
        LegacyNginx { port, dir, child }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }
}

impl Drop for LegacyNginx {
    fn drop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

/// Stops an nginx master with SIGTERM and waits for it: a killed master leaves its worker
/// serving (and holding its port) after the test has ended.
pub fn stop_nginx(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Origin {
    /// Stops nginx with its workers.
    pub fn stop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}
