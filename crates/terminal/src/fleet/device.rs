//! One virtual terminal of the fleet: its own in-memory secure store and keys, the library's
//! back-end client, the native kernel and a fresh copy of a virtual card per payment (from the
//! run's [`CardBook`], personalised once).
//!
//! Set-up walks the real device lifecycle: register (software attestation), approval through
//! the admin API, key injection (ECDH + TR-31 + KCV), a clean health report, activation. A
//! compromised device then reports hooked and rooted signals, which the server's policy answers
//! by suspending it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::admin::AdminClient;
use super::cards::CardBook;
use super::mix::{PinAnswer, Scenario};
use super::runner::{FleetTerminal, PayReport, PayResult};
use crate::client::Client;
use crate::client::wire::DeviceFacts;
use crate::health::{AppFacts, Compromise, HealthCollector};
use crate::money;
use crate::payment::{self, FixedPin, PaymentError, PaymentRequest, ReaderConfig};
use crate::store::{DeviceConfig, SecureStore};

/// Time of each set-up step.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupTimings {
    /// Challenge + registration.
    pub register: Duration,
    /// The operator's approval (admin API).
    pub approve: Duration,
    /// Key injection and confirmation.
    pub keys: Duration,
    /// Health nonce + report + activation.
    pub health: Duration,
}

/// A set-up virtual terminal.
pub struct VirtualDevice {
    id: String,
    client: Client,
    kernel: Box<dyn kernel_host::Kernel + Send>,
    reader: ReaderConfig,
    currency: money::Currency,
    cards: Arc<CardBook>,
}

impl std::fmt::Debug for VirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualDevice")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A PIN that is never a test card's (the virtual cards' PINs are four digits).
const WRONG_PIN: &str = "98765";

fn code_of(error: &crate::client::ClientError) -> String {
    error.code().to_owned()
}

/// Sets up device number `index`; a `compromised` one ends with a hooked, rooted health report.
/// With `forwarded_for` it registers from its own benchmarking address (see [`super::enrol`]).
/// It taps copies of the cards in `cards`.
///
/// # Errors
/// The stable code of the step that failed, prefixed with the step (`register:…`, `approve:…`,
/// `keys:…`, `health:…`, `activate:…`, `compromise:…`).
pub async fn setup(
    server: &str,
    merchant: &str,
    admin: &AdminClient,
    index: u32,
    compromised: bool,
    forwarded_for: bool,
    cards: Arc<CardBook>,
) -> Result<(VirtualDevice, SetupTimings), String> {
    let merchant_id: Uuid = merchant
        .parse()
        .map_err(|_| "register:merchant_id_invalid".to_owned())?;
    let store = Arc::new(SecureStore::in_memory(DeviceConfig {
        server_url: Some(server.to_owned()),
        ..DeviceConfig::default()
    }));
    let client = Client::with_base(server, Arc::clone(&store))
        .map_err(|e| format!("client:{}", e.code()))?;
    let facts = AppFacts::development();
    let mut timings = SetupTimings::default();

    let step = Instant::now();
    let mut device_facts = DeviceFacts::desktop(&facts);
    device_facts.model = format!("Fleet virtual terminal {index}");
    // Only the registration comes from the device's own address: the cap is per address.
    let registrar = if forwarded_for {
        &Client::with_base(server, store)
            .map_err(|e| format!("client:{}", e.code()))?
            .with_header("x-forwarded-for", &super::enrol::benchmark_address(index))
    } else {
        &client
    };
    let id = registrar
        .register(merchant_id, &device_facts, "softpos")
        .await
        .map_err(|e| format!("register:{}", code_of(&e)))?
        .id;
    timings.register = step.elapsed();
    let id = id.to_string();

    let step = Instant::now();
    admin
        .approve_device(&id, "fleet simulator")
        .await
        .map_err(|e| format!("approve:{}", e.code))?;
    timings.approve = step.elapsed();

    let step = Instant::now();
    client
        .inject_keys()
        .await
        .map_err(|e| format!("keys:{}", code_of(&e)))?;
    timings.keys = step.elapsed();

    let step = Instant::now();
    let collector = HealthCollector::simulated(facts.clone());
    let verdict = client
        .report_health(&collector)
        .await
        .map_err(|e| format!("health:{}", code_of(&e)))?;
    if !verdict.passed {
        return Err(format!("health:failed_{}", verdict.failed_checks.join("+")));
    }
    client
        .activate()
        .await
        .map_err(|e| format!("activate:{}", code_of(&e)))?;
    timings.health = step.elapsed();

    if compromised {
        // The device was clean when it was activated; now Frida hooks it on a rooted phone.
        let mut hooked = HealthCollector::simulated(facts);
        Compromise::Hooked.apply(&mut hooked.injected);
        Compromise::Rooted.apply(&mut hooked.injected);
        let verdict = client
            .report_health(&hooked)
            .await
            .map_err(|e| format!("compromise:{}", code_of(&e)))?;
        if verdict.passed {
            return Err("compromise:report_passed".to_owned());
        }
    } else {
        // Fetched ahead, as a phone does before the tap.
        client
            .prefetch_token()
            .await
            .map_err(|e| format!("token:{}", code_of(&e)))?;
    }

    let (kernel, _) = payment::choose_kernel(None);
    let currency = money::currency("USD").map_err(|e| format!("currency:{}", e.code))?;
    Ok((
        VirtualDevice {
            id,
            client,
            kernel,
            reader: ReaderConfig::default(),
            currency,
            cards,
        },
        timings,
    ))
}

impl VirtualDevice {
    /// The server's id of this device.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    async fn sale(
        &mut self,
        card: &str,
        pin: PinAnswer,
        amount_minor: u64,
    ) -> Result<payment::PaymentResult, PaymentError> {
        let (mut source, test_pin) = self.cards.tap(card)?;
        let mut pin_source = match pin {
            PinAnswer::Correct => FixedPin::new(test_pin),
            PinAnswer::Wrong => FixedPin::new(WRONG_PIN),
        };
        let request = PaymentRequest {
            amount_minor,
            currency: self.currency,
            location: None,
            idempotency_key: None,
        };
        payment::pay(
            &self.client,
            self.kernel.as_mut(),
            &self.reader,
            &mut source,
            &mut pin_source,
            &request,
        )
        .await
    }

    /// Runs payments on `kernel` from now on (e.g. the verified `.wasm`) instead of the native
    /// one.
    pub fn use_kernel(&mut self, kernel: Box<dyn kernel_host::Kernel + Send>) {
        self.kernel = kernel;
    }

    /// One payment from tap to result with nothing fetched ahead: token, kernel, DUKPT keys,
    /// PIN block when the card asks for online PIN, authorization (the tap-to-result
    /// benchmark).
    ///
    /// # Errors
    /// The payment's error.
    pub async fn tap_to_result(
        &mut self,
        card: &str,
        pin: PinAnswer,
        amount_minor: u64,
    ) -> Result<payment::PaymentResult, PaymentError> {
        self.client.clear_token().await;
        self.sale(card, pin, amount_minor).await
    }

    /// Tries one payment and tells whether the server refused it because of the device's
    /// state (what a compromised device must get).
    pub async fn payment_is_refused(&mut self) -> bool {
        self.client.clear_token().await;
        match self.sale("visa-fdda", PinAnswer::Correct, 1_000).await {
            Err(PaymentError::Client(error)) => matches!(
                error.code(),
                "device_not_active" | "blocking_threat" | "health_check_failed" | "device_revoked"
            ),
            _ => false,
        }
    }
}

impl FleetTerminal for VirtualDevice {
    /// Steps recorded: `token` (fetching the next token, done between taps as a phone does),
    /// `card` (the kernel against the card), `keys` (DUKPT advance + card data encryption),
    /// `pin` (PIN block, online PIN only), `authorization` (the sale request until the answer)
    /// and `total` (tap to result).
    async fn pay(&mut self, scenario: Scenario, amount_minor: u64) -> PayReport {
        let started = Instant::now();
        let result = self.sale(scenario.card, scenario.pin, amount_minor).await;
        let total = started.elapsed();
        let (result, mut steps) = match result {
            Ok(result) => {
                let t = result.timings;
                let mut steps = vec![
                    ("card", t.kernel),
                    ("keys", t.keys),
                    ("authorization", t.authorization),
                    ("total", t.total),
                ];
                if result.online_pin {
                    steps.push(("pin", t.pin));
                }
                let tx = &result.transaction;
                let outcome = if tx.approved {
                    PayResult::Approved
                } else {
                    PayResult::Declined(
                        tx.response_code
                            .clone()
                            .unwrap_or_else(|| tx.state.to_lowercase()),
                    )
                };
                (outcome, steps)
            }
            Err(PaymentError::Outcome { code, .. }) => (
                PayResult::Declined(format!("kernel_{code}")),
                vec![("total", total)],
            ),
            Err(error) => (
                PayResult::Error(error.code().to_owned()),
                vec![("total", total)],
            ),
        };
        let step = Instant::now();
        if self.client.prefetch_token().await.is_ok() {
            steps.push(("token", step.elapsed()));
        }
        PayReport { result, steps }
    }
}
