//! Tap-to-result latency of the terminal core against a local `softpos-server` (issue 7,
//! section 5): token + kernel + DUKPT keys and card data encryption + PIN block +
//! authorisation, one payment after the other, p50 / p90 / p99 / max per step.
//!
//! Run (a release server gives the figures that count):
//!
//! ```text
//! cargo build --release -p server --bin softpos-server
//! SOFTPOS_SERVER_BIN=target/release/softpos-server TAP_PAYMENTS=1000 \
//!     cargo bench -p terminal --bench tap_to_result
//! ```
//!
//! Each payment is an online-PIN sale (`visa-online-pin`, 40.00 USD, the correct PIN) through
//! the native kernel, or through the kernel `.wasm` in `KERNEL_WASM` when set (wasmi, as the
//! terminal runs it). Tokens are fetched ahead, as the terminal does, so the token step is the
//! cache hit; the time to issue a token is shown on its own. Payments rotate over enough
//! terminals that none passes the server's default velocity rule (30 sales a minute).
//!
//! Measured on the project's shared 2-core machine (other builds running), 1,000 payments on
//! 40 terminals, all approved, the bench in the `bench` profile but the server a *debug* build
//! (`SOFTPOS_SERVER_BIN=target/debug/softpos-server`; the release build did not finish in
//! time): native kernel, total p50 16.8 ms, p99 53.7 ms (kernel p50 0.35 ms, keys and card data
//! 0.02 ms, PIN block 0.01 ms, authorisation p50 16.4 ms / p99 53.3 ms); kernel `.wasm` in
//! wasmi (`KERNEL_WASM=...`), total p50 18.1 ms, p99 57.1 ms (kernel p50 2.2 ms, p99 3.1 ms).
//! Issuing a token (done ahead, outside the tap) took p50 8.5 ms, p99 27 to 33 ms.

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/core_server.rs"]
mod core_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kernel_host::Kernel;
use terminal::client::Client;
use terminal::money;
use terminal::payment::{self, CardSpec, FixedPin, PaymentRequest, ReaderConfig, StepTimings};

const PER_TERMINAL: usize = 25;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn line(name: &str, mut values: Vec<Duration>) {
    values.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<14} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        ms(percentile(&values, 50.0)),
        ms(percentile(&values, 90.0)),
        ms(percentile(&values, 99.0)),
        ms(values.last().copied().unwrap_or_default()),
    );
}

fn kernel() -> (Box<dyn Kernel + Send>, &'static str) {
    match std::env::var_os("KERNEL_WASM") {
        Some(path) => {
            let wasm = std::fs::read(path).expect("KERNEL_WASM readable");
            let kernel = kernel_host::WasmKernel::load(&wasm, kernel_host::Limits::default())
                .expect("kernel .wasm loads");
            (Box::new(kernel), "wasm (wasmi)")
        }
        None => (Box::new(kernel_host::NativeKernel::new()), "native"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let payments: usize = std::env::var("TAP_PAYMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(payments));
}

async fn run(payments: usize) {
    let server = core_server::TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let terminals = payments.div_ceil(PER_TERMINAL).max(1);
    let mut clients: Vec<Arc<Client>> = Vec::with_capacity(terminals);
    for _ in 0..terminals {
        let client =
            core_server::onboarded(&server, &admin, merchant, core_server::memory_store()).await;
        client.prefetch_token().await.expect("token");
        clients.push(client);
    }
    let (mut kernel, kernel_name) = kernel();
    let pin = emv_cards::Card::profile("visa-online-pin")
        .expect("profile")
        .test_pin();
    let reader = ReaderConfig::default();
    let request = PaymentRequest {
        amount_minor: 4_000,
        currency: money::currency("USD").expect("USD"),
        location: None,
        idempotency_key: None,
    };

    let mut timings: Vec<StepTimings> = Vec::with_capacity(payments);
    let mut token_issue = Vec::with_capacity(payments);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    let started = Instant::now();
    for index in 0..payments {
        let client = &clients[index % terminals];
        let mut card =
            payment::card::open(&CardSpec::Virtual("visa-online-pin".to_owned())).expect("card");
        match payment::pay(
            client,
            kernel.as_mut(),
            &reader,
            card.as_mut(),
            &mut FixedPin::new(pin),
            &request,
        )
        .await
        {
            Ok(result) if result.transaction.approved => timings.push(result.timings),
            Ok(result) => {
                *errors
                    .entry(result.transaction.decline_reason.unwrap_or_default())
                    .or_default() += 1;
            }
            Err(error) => *errors.entry(error.code().to_owned()).or_default() += 1,
        }
        // The next token is fetched ahead, outside the tap.
        let step = Instant::now();
        if client.prefetch_token().await.is_ok() {
            token_issue.push(step.elapsed());
        }
    }
    let elapsed = started.elapsed();

    println!(
        "tap-to-result: {} approved of {payments} payments on {terminals} terminals, kernel {kernel_name}, {:.1} payments/s sequential",
        timings.len(),
        payments as f64 / elapsed.as_secs_f64()
    );
    line("total", timings.iter().map(|t| t.total).collect());
    line("token (cache)", timings.iter().map(|t| t.token).collect());
    line("kernel", timings.iter().map(|t| t.kernel).collect());
    line("keys+encrypt", timings.iter().map(|t| t.keys).collect());
    line("pin block", timings.iter().map(|t| t.pin).collect());
    line(
        "authorization",
        timings.iter().map(|t| t.authorization).collect(),
    );
    line("token issue", token_issue);
    if !errors.is_empty() {
        println!("not approved, by code: {errors:?}");
    }
}
