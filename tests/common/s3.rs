//! A real S3-compatible server for tests that need one (included with `#[path]` by the test
//! files that use it, so the others do not compile s3s).
#![allow(dead_code)]

use crate::common::wait_for_port;

pub const S3_KEY: &str = "AKIALINKGATETEST";
pub const S3_SECRET: &str = "linkgate-test-secret-key-0123456789";

/// A real S3-compatible server (s3s-fs: objects are files under `root/BUCKET/`) with SigV4
/// authentication, on a free loopback port, in its own thread and runtime.
pub struct S3Server {
    pub port: u16,
    pub root: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    pub fn start() -> S3Server {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;

        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("docs")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let path = root.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let fs = s3s_fs::FileSystem::new(path).unwrap();
                let mut builder = s3s::service::S3ServiceBuilder::new(fs);
                builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY, S3_SECRET));
                let service = builder.build();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let http = ConnBuilder::new(TokioExecutor::new());
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                            tokio::spawn(async move { let _ = conn.await; });
                        }
                        _ = &mut stopped => break,
                    }
                }
            });
        });
        wait_for_port(port, "s3s-fs");
        S3Server {
            port,
            root,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.root.path().join("docs").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn store(&self, name: &str, secret: &str) -> String {
        format!(
            "[stores.{name}]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\nbucket = \"docs\"\naccess_key_id = \"{S3_KEY}\"\nsecret_access_key = \"{secret}\"\n",
            self.port
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
