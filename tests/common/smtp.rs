//! [`SmtpSink`]: a real SMTP listener (aiosmtpd) that keeps what the gateway mails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::{free_port, wait_for_port};

/// A real SMTP listener (Debian's python3-aiosmtpd) that stores what it receives in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_on(free_port())
    }

    /// A sink on a given port (e.g. one a gateway was configured with while nothing listened).
    pub fn start_on(port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        // Debian's python3 (not a pyenv one) has the aiosmtpd package.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd must be installed (apt-get install python3-aiosmtpd)");
        wait_for_port(port, "aiosmtpd");
        SmtpSink { port, dir, child }
    }

    /// The `[mail]` table for a gateway delivering here.
    pub fn config(&self) -> String {
        format!("[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\n", self.port)
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir").join(sub)) {
                let mut paths: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
                out.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
            }
        }
        out
    }

    /// Waits for the `n`th message (1-based) to arrive and returns the code it carries.
    pub fn code(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                let msg = &messages[n - 1];
                if let Some(code) = msg
                    .lines()
                    .map(str::trim)
                    .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                {
                    return code.to_string();
                }
                panic!("no code in message: {msg}");
            }
            assert!(Instant::now() < deadline, "no mail arrived");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
