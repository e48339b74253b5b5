//! The render worker: a child process per render.
//!
//! The parent ([`run`]) starts the gateway's own binary as `linkgate render-worker <spec>` with
//! limits set between `fork` and `exec`: memory (`RLIMIT_DATA` and `RLIMIT_AS`), CPU seconds,
//! no file may be written (`RLIMIT_FSIZE` 0) and few descriptors may be open. It writes the
//! document to the child's stdin and reads the result from its stdout, and kills it at the
//! wall-clock deadline. The child ([`main`]) opens no file and no socket: it reads stdin, renders
//! in-process ([`super::run_job`]) and writes stdout. Every descriptor the gateway holds is
//! close-on-exec, so the child inherits none of its sockets.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{run_job, Caps, Job, RenderError};

/// Exit status of a worker that refused its input (the reason is on stderr).
const REFUSED: u8 = 3;
/// Exit status of a worker that failed otherwise.
const FAILED: u8 = 4;

/// What a worker is asked to do (its one argument, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub job: Job,
    pub caps: Caps,
    pub max_input_bytes: u64,
}

/// The process limits a worker runs under.
#[derive(Debug, Clone, Copy)]
pub struct ProcessLimits {
    pub memory_bytes: u64,
    pub timeout: Duration,
    /// Most bytes the worker may answer with.
    pub max_output_bytes: u64,
}

/// The worker's body (`linkgate render-worker <spec>`): stdin in, stdout out.
pub fn main(spec: &str) -> ExitCode {
    let spec: Spec = match serde_json::from_str(spec) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("bad worker spec: {e}");
            return ExitCode::from(FAILED);
        }
    };
    let mut input = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(spec.max_input_bytes.saturating_add(1))
        .read_to_end(&mut input);
    if let Err(e) = read {
        eprintln!("reading the document: {e}");
        return ExitCode::from(FAILED);
    }
    if input.len() as u64 > spec.max_input_bytes {
        eprintln!("the document is larger than render.max_input_bytes");
        return ExitCode::from(REFUSED);
    }
    match run_job(&spec.job, &input, &spec.caps) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&out.bytes)
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return ExitCode::from(FAILED);
            }
            ExitCode::SUCCESS
        }
        Err(RenderError::Refused(why)) => {
            eprintln!("{why}");
            ExitCode::from(REFUSED)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(FAILED)
        }
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe and only reads `limit`.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs one job in a new worker process and returns what it wrote.
pub async fn run(
    program: &Path,
    spec: &Spec,
    input: Vec<u8>,
    limits: ProcessLimits,
) -> Result<Vec<u8>, RenderError> {
    let arg = serde_json::to_string(spec).map_err(|e| RenderError::Failed(e.to_string()))?;
    let mut command = tokio::process::Command::new(program);
    command
        .arg("render-worker")
        .arg(arg)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let memory = limits.memory_bytes;
    let cpu = limits.timeout.as_secs().saturating_add(1);
    // SAFETY: the closure runs between fork and exec and only calls setrlimit.
    unsafe {
        command.pre_exec(move || {
            set_limit(libc::RLIMIT_DATA, memory)?;
            // Address space: the data limit plus room for the binary, stacks and the
            // allocator's reservations (which count here but not as data).
            set_limit(libc::RLIMIT_AS, memory.saturating_add(1 << 30))?;
            set_limit(libc::RLIMIT_CPU, cpu)?;
            set_limit(libc::RLIMIT_FSIZE, 0)?;
            set_limit(libc::RLIMIT_NOFILE, 16)?;
            set_limit(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| RenderError::Failed(format!("starting the render worker: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(RenderError::Failed(
            "the worker's pipes are missing".to_string(),
        ));
    };
    let writer = tokio::spawn(async move {
        // A worker that stops reading (refused early) closes the pipe: not an error here.
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    let max_out = limits.max_output_bytes;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(max_out.saturating_add(1));
        let mut stderr = stderr.take(4096);
        let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        a.and(b)
            .map_err(|e| RenderError::Failed(format!("reading the worker: {e}")))?;
        let status = child
            .wait()
            .await
            .map_err(|e| RenderError::Failed(format!("waiting for the worker: {e}")))?;
        Ok::<_, RenderError>((status, out, err))
    };
    let outcome = tokio::time::timeout(limits.timeout, work).await;
    writer.abort();
    let (status, out, err) = match outcome {
        Ok(result) => result?,
        Err(_) => {
            // Killed and reaped now (`kill_on_drop` would too, later).
            let _ = child.kill().await;
            return Err(RenderError::Limit(format!(
                "stopped after {} ms",
                limits.timeout.as_millis()
            )));
        }
    };
    let reason = String::from_utf8_lossy(&err).trim().to_string();
    if out.len() as u64 > max_out {
        return Err(RenderError::Limit("the output is too large".to_string()));
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(out),
        (Some(c), _) if c == i32::from(REFUSED) => Err(RenderError::Refused(reason)),
        (Some(_), _) => {
            // A failed allocation under the memory limit ends in an abort message and a
            // non-zero code on some paths.
            if reason.contains("memory allocation") {
                return Err(RenderError::Limit("out of memory".to_string()));
            }
            Err(RenderError::Failed(reason))
        }
        (None, Some(sig)) if sig == libc::SIGXCPU || sig == libc::SIGKILL => {
            Err(RenderError::Limit("CPU time".to_string()))
        }
        (None, Some(sig)) if sig == libc::SIGABRT || sig == libc::SIGSEGV => Err(
            RenderError::Limit(format!("the worker died (signal {sig}; memory limit?)")),
        ),
        (None, sig) => Err(RenderError::Failed(format!("the worker died ({sig:?})"))),
    }
}
