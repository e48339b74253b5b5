//! Renditions (criterion): the first-page thumbnail of a 100-page PDF and pages per second,
//! in-process (what a render worker does, without the process start), and one thumbnail through
//! a worker process as the gateway makes it. The PDF is made at the start of the run.
//! Run: `cargo bench --bench render`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use linkgate::render::{run_job, sample, Caps, Format, Job};

fn thumbnails(c: &mut Criterion) {
    let pdf = sample::pdf(100, 612.0, 792.0);
    let caps = Caps::default();
    let mut g = c.benchmark_group("render");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    let thumb = Job::Page {
        page: 1,
        width: 240,
        format: Format::Png,
    };
    g.bench_function("first-page thumbnail, 100-page PDF (in-process)", |b| {
        b.iter(|| run_job(black_box(&thumb), black_box(&pdf), &caps).map(|o| o.bytes.len()))
    });
    let page = Job::Page {
        page: 50,
        width: 800,
        format: Format::Png,
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("one page at 800 px, PNG (in-process)", |b| {
        b.iter(|| run_job(black_box(&page), black_box(&pdf), &caps).map(|o| o.bytes.len()))
    });
    g.finish();

    let mut g = c.benchmark_group("render pages/s");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(100));
    g.bench_function("all 100 pages at 800 px, rasterised (in-process)", |b| {
        b.iter(|| {
            let mut n = 0;
            linkgate::render::pdf::rasterize_all(&pdf, 94, &caps, |img, _| {
                n += img.width();
                Ok(())
            })
            .map(|_| n)
        })
    });
    g.finish();

    // Through a worker process, as the gateway runs it (process start, limits, pipes).
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_linkgate"));
    if exe.exists() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let spec = linkgate::render::worker::Spec {
            job: thumb.clone(),
            caps,
            max_input_bytes: 64 << 20,
        };
        let limits = linkgate::render::worker::ProcessLimits {
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(20),
            max_output_bytes: 64 << 20,
        };
        let mut g = c.benchmark_group("render worker");
        g.sample_size(20);
        g.bench_function("first-page thumbnail, 100-page PDF (worker process)", |b| {
            b.iter(|| {
                rt.block_on(linkgate::render::worker::run(
                    &exe,
                    &spec,
                    pdf.clone(),
                    limits,
                ))
                .map(|o| o.len())
            })
        });
        g.finish();
    } else {
        eprintln!(
            "no {} (set LINKGATE_BIN): worker bench skipped",
            exe.display()
        );
    }
}

criterion_group!(benches, thumbnails);
criterion_main!(benches);
