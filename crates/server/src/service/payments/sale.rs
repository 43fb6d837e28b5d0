//! The sale pipeline (see the module doc of `service::payments` for the order of steps).

use payment_crypto::data::{self, Padding};
use payment_crypto::dukpt::{aes as aes_dukpt, tdes as tdes_dukpt};
use payment_crypto::pinblock::{self, EncryptedPinBlock, Pan, PinBlockFormat};
use payment_crypto::{KeyAlgorithm, SecretKey};
use uuid::Uuid;

use super::card::{self, CardData};
use super::idempotency::{self, Answer, Claim};
use super::processor::{AuthorizationMessage, ProcessorError};
use super::{OsRandom, PaymentService, TransactionView, device_not_active};
use crate::domain::{Device, DeviceMode, DeviceState, now_millis};
use crate::error::{AppError, AppResult};
use crate::repository::transactions::{
    CounterAdvance, Decision, TransactionEvent, TransactionRecord, TransactionState,
};
use crate::service::RequestContext;
use crate::service::ports::{
    DukptHost, DukptScheme, GeoPoint, KeySetInfo, Severity, ThreatKind, ThreatSignal,
    TransactionObservation,
};

/// A sale as the device sent it, hex already decoded.
#[derive(Debug)]
pub struct SaleRequest {
    /// Transaction Token.
    pub token: String,
    /// Amount, minor units.
    pub amount_minor: u64,
    /// ISO 4217 alpha code.
    pub currency: String,
    /// DE 55 from the kernel's online request, without cardholder data.
    pub emv_data: Vec<u8>,
    /// Card data JSON encrypted under the DUKPT data key (CBC, ISO/IEC 9797-1 method 2).
    pub card_data: Vec<u8>,
    /// CBC IV of the card data; all zeros when absent.
    pub card_data_iv: Option<Vec<u8>>,
    /// PIN block under the DUKPT PIN key (format 4 for AES DUKPT, 0 for TDES).
    pub pin_block: Option<Vec<u8>>,
    /// KSN: 12 bytes (AES DUKPT) or 10 (TDES DUKPT).
    pub ksn: Vec<u8>,
    /// Where the device is.
    pub location: Option<GeoPoint>,
}

/// The KSN parsed for the key set's scheme.
enum ParsedKsn {
    Aes(aes_dukpt::Ksn),
    Tdes(tdes_dukpt::Ksn),
}

impl ParsedKsn {
    fn parse(key_set: &KeySetInfo, bytes: &[u8]) -> AppResult<(Self, u32)> {
        let invalid = || AppError::Unprocessable {
            code: "ksn_invalid",
            message: "the KSN does not name a transaction of the device's key set",
        };
        match key_set.scheme {
            DukptScheme::Aes128 => {
                let ksn = aes_dukpt::Ksn::from_bytes(bytes).map_err(|_| invalid())?;
                if ksn.initial_key_id().as_bytes()[..] != key_set.initial_key_id[..]
                    || aes_dukpt::validate_counter(ksn.counter()).is_err()
                {
                    return Err(invalid());
                }
                let counter = ksn.counter();
                Ok((Self::Aes(ksn), counter))
            }
            DukptScheme::Tdes => {
                let ksn = tdes_dukpt::Ksn::from_bytes(bytes).map_err(|_| invalid())?;
                if ksn.initial().as_bytes()[..] != key_set.initial_key_id[..] || ksn.counter() == 0
                {
                    return Err(invalid());
                }
                let counter = ksn.counter();
                Ok((Self::Tdes(ksn), counter))
            }
        }
    }

    /// The data key and PIN key of this transaction, and the PIN block format under it.
    fn working_keys(&self, host: &DukptHost) -> AppResult<(SecretKey, SecretKey, PinBlockFormat)> {
        let mismatch = || AppError::Other(anyhow::anyhow!("key set scheme differs from its BDK"));
        let invalid = || AppError::Unprocessable {
            code: "ksn_invalid",
            message: "the KSN does not name a transaction of the device's key set",
        };
        match (self, host) {
            (Self::Aes(ksn), DukptHost::Aes(bdk)) => {
                // X9.24-3:2017 6.3.2: the terminal encrypts request data with a "data
                // encryption, encrypt" key and PINs with a "PIN encryption" key, AES-128.
                let data = bdk
                    .derive_working_key(
                        ksn,
                        aes_dukpt::WorkingKeyUsage::DataEncryptionEncrypt,
                        KeyAlgorithm::Aes128,
                    )
                    .map_err(|_| invalid())?;
                let pin = bdk
                    .derive_working_key(
                        ksn,
                        aes_dukpt::WorkingKeyUsage::PinEncryption,
                        KeyAlgorithm::Aes128,
                    )
                    .map_err(|_| invalid())?;
                Ok((data, pin, PinBlockFormat::Iso4))
            }
            (Self::Tdes(ksn), DukptHost::Tdes(bdk)) => {
                // X9.24-1:2009 A.4.1: data request variant and PIN variant of the current key.
                let keys = bdk.derive_transaction_keys(ksn).map_err(|_| invalid())?;
                Ok((
                    keys.data_request_key(),
                    keys.pin_encryption_key(),
                    PinBlockFormat::Iso0,
                ))
            }
            _ => Err(mismatch()),
        }
    }
}

impl PaymentService {
    /// Runs a sale once per `(device, idempotency_key)`.
    ///
    /// # Errors
    /// Only errors that are not answers: `idempotency_key_reused`, `idempotency_in_progress`
    /// and server errors; every refusal of the sale itself is an [`Answer`] with its status.
    pub async fn sale(
        &self,
        device: &Device,
        idempotency_key: &str,
        body: &[u8],
        request: SaleRequest,
        ctx: &RequestContext,
    ) -> AppResult<Answer> {
        idempotency::check_key(idempotency_key)?;
        let scope = format!("sale:{}", device.id);
        idempotency::run(
            &self.repo,
            &scope,
            idempotency_key,
            &idempotency::body_hash(body),
            201,
            self.lease,
            |claim| self.run_sale(device, request, ctx, claim),
        )
        .await
    }

    async fn run_sale(
        &self,
        device: &Device,
        request: SaleRequest,
        ctx: &RequestContext,
        claim: Claim,
    ) -> AppResult<TransactionView> {
        // A takeover finishes what the dead worker recorded, found by the request's token
        // (the retry's body is the first one's); keys claimed before that rule name the
        // transaction themselves.
        if let Some(resource) = &claim.recovered {
            let id = resource.parse().map_err(|_| {
                AppError::Other(anyhow::anyhow!("idempotency resource is not an id"))
            })?;
            let recorded = self
                .repo
                .find(id)
                .await?
                .ok_or(AppError::NotFound("transaction"))?;
            return self.recover_sale(recorded).await;
        }
        if claim.taken_over {
            let token_id = self.ports.tokens.token_id(&request.token).await?;
            if let Some(recorded) = self.repo.find_by_token(device.id, token_id).await? {
                return self.recover_sale(recorded).await;
            }
        }
        let claims = self
            .ports
            .tokens
            .consume(&request.token, device, ctx)
            .await?;
        if device.state != DeviceState::Active {
            return Err(device_not_active());
        }
        if device.mode != DeviceMode::Softpos {
            return Err(AppError::Unprocessable {
                code: "device_mode_mismatch",
                message: "pinpad devices do not submit sales",
            });
        }
        if request.amount_minor == 0 || i64::try_from(request.amount_minor).is_err() {
            return Err(AppError::field("amount_minor", "must be positive"));
        }
        if claims
            .amount_ceiling_minor
            .is_some_and(|ceiling| request.amount_minor > ceiling)
        {
            return Err(AppError::Unprocessable {
                code: "amount_above_token_ceiling",
                message: "the amount is above what the device's security state allows",
            });
        }
        let currency_numeric =
            card::currency_numeric(&request.currency).ok_or(AppError::Unprocessable {
                code: "currency_unsupported",
                message: "the currency is not accepted by the processor connection",
            })?;
        let key_set =
            self.ports
                .keys
                .active_key_set(device.id)
                .await?
                .ok_or(AppError::Conflict {
                    code: "no_active_key_set",
                    message: "the device has no active DUKPT key set",
                })?;
        if claims.key_set_id.is_some_and(|id| id != key_set.id) {
            return Err(AppError::Conflict {
                code: "key_set_changed",
                message: "the token was issued for another key set",
            });
        }
        let (ksn, counter) = ParsedKsn::parse(&key_set, &request.ksn)?;
        self.advance_counter(device, &key_set, counter, &request.ksn, ctx)
            .await?;

        let host = self.ports.keys.dukpt_host(&key_set).await?;
        let (data_key, pin_key, device_pin_format) = ksn.working_keys(&host)?;
        drop(host);
        let iv = request
            .card_data_iv
            .clone()
            .unwrap_or_else(|| data::zero_iv(data_key.algorithm()).to_vec());
        let card = data::decrypt(&data_key, &iv, Padding::Iso9797Method2, &request.card_data)
            .map_err(|_| card_error(card::CardDataError::Undecryptable))
            .and_then(|plain| CardData::parse(&plain).map_err(card_error))?;
        drop(data_key);
        let emv = card::check_emv_data(&request.emv_data, request.amount_minor, currency_numeric)
            .map_err(card_error)?;

        let pin_block = match &request.pin_block {
            None => None,
            Some(block) => Some(
                self.translate_pin(block, &pin_key, device_pin_format, &card)
                    .await?,
            ),
        };
        drop(pin_key);

        let now = now_millis();
        let record = TransactionRecord {
            id: Uuid::now_v7(),
            device_id: device.id,
            merchant_id: device.merchant_id,
            token_id: claims.token_id,
            key_set_id: key_set.id,
            ksn: hex::encode_upper(&request.ksn),
            amount_minor: i64::try_from(request.amount_minor).unwrap_or(i64::MAX),
            currency: request.currency.clone(),
            state: TransactionState::Pending,
            approved: false,
            scheme: emv
                .scheme
                .unwrap_or_else(|| card.scheme_from_bin())
                .to_owned(),
            pan_masked: card.masked(),
            pan_last4: card.last4(),
            pan_fingerprint: card.fingerprint(&self.fingerprint_key),
            online_pin: pin_block.is_some(),
            processor: self.processor.name().to_owned(),
            response_code: None,
            authorisation_code: None,
            decline_reason: None,
            arpc: None,
            refunded_minor: 0,
            reserved_minor: 0,
            processor_reference: None,
            reversal_reason: None,
            reversed_at: None,
            location: request
                .location
                .map(|point| serde_json::to_string(&point))
                .transpose()
                .map_err(anyhow::Error::from)?,
            client_addr: ctx.client_addr.clone(),
            decided_at: None,
            created_at: now,
            updated_at: now,
        };
        self.repo.insert(&record).await.map_err(|error| {
            if matches!(&error, AppError::Sqlx(e) if crate::infra::db::is_unique_violation(e)) {
                AppError::Conflict {
                    code: "token_reused",
                    message: "this Transaction Token was already used",
                }
            } else {
                error
            }
        })?;
        // From here a takeover of this key finishes this transaction (found by its token)
        // instead of paying again.

        let today = chrono::Utc::now().format("%y%m%d").to_string();
        let message = AuthorizationMessage {
            transaction_id: record.id,
            pan: card.expose_pan(),
            pan_sequence_number: card.pan_sequence_number,
            expiry_yymm: &card.expiry_yymm,
            amount_minor: request.amount_minor,
            currency_numeric,
            icc_data: &request.emv_data,
            pin_block: pin_block.as_ref().map(EncryptedPinBlock::as_bytes),
            today_yymmdd: &today,
        };
        let answer = self.processor.authorize(&message).await;
        let decided_at = now_millis();
        let decision = match &answer {
            Ok(answer) => Decision {
                state: if answer.approved {
                    TransactionState::Approved
                } else {
                    TransactionState::Declined
                },
                response_code: Some(answer.response_code.clone()),
                authorisation_code: answer.authorisation_code.clone(),
                decline_reason: answer.decline_reason.clone(),
                arpc: answer.arpc.as_deref().map(hex::encode_upper),
                processor_reference: answer.reference.clone(),
                at: decided_at,
            },
            Err(error) => Decision {
                state: TransactionState::Failed,
                response_code: None,
                authorisation_code: None,
                decline_reason: Some(error.code().to_owned()),
                arpc: None,
                processor_reference: None,
                at: decided_at,
            },
        };
        let decided = self.repo.decide(record.id, &decision).await?;
        metrics::counter!("payments_total", "state" => decision.state.as_str()).increment(1);
        let timed_out = answer == Err(ProcessorError::Timeout);
        if timed_out {
            self.automatic_reversal(&record, &message).await?;
        }
        drop(card);

        let approved = decision.state == TransactionState::Approved;
        if answer.is_ok() {
            let observation = TransactionObservation {
                device_id: device.id,
                transaction_id: record.id,
                at: decided_at,
                approved,
                amount_minor: request.amount_minor,
                currency: request.currency.clone(),
                location: request.location,
            };
            // The sale is decided and recorded: a failing behaviour rule must not turn it
            // into an error the terminal would retry.
            if let Err(error) = self
                .ports
                .threats
                .observe_transaction(observation, ctx)
                .await
            {
                tracing::warn!(error = %error, transaction = %record.id, "behaviour rules failed");
            }
        }
        if decided && !timed_out {
            return Ok(TransactionView::from(&record.decided(&decision)));
        }
        // Reversed, or decided by a takeover meanwhile: the row says how it stands.
        let stored = self
            .repo
            .find(record.id)
            .await?
            .ok_or(AppError::NotFound("transaction"))?;
        Ok(TransactionView::from(&stored))
    }

    /// Moves the key set's counter forward, or reports the replay / rollback and refuses.
    async fn advance_counter(
        &self,
        device: &Device,
        key_set: &KeySetInfo,
        counter: u32,
        ksn: &[u8],
        ctx: &RequestContext,
    ) -> AppResult<()> {
        let at = now_millis();
        let outcome = self
            .repo
            .advance_counter(key_set.id, device.id, i64::from(counter), at)
            .await?;
        let (kind, code, message, last) = match outcome {
            CounterAdvance::Advanced => return Ok(()),
            CounterAdvance::Replay => (
                ThreatKind::KsnReplay,
                "ksn_replay",
                "this KSN was already used: replay refused",
                i64::from(counter),
            ),
            CounterAdvance::Rollback { last } => (
                ThreatKind::KsnRollback,
                "ksn_rollback",
                "this KSN is older than the device's last: refused",
                last,
            ),
        };
        metrics::counter!("payments_refused_total", "code" => code).increment(1);
        self.ports
            .threats
            .report(
                ThreatSignal {
                    device_id: device.id,
                    kind,
                    severity: Severity::High,
                    evidence: serde_json::json!({
                        "ksn": hex::encode_upper(ksn),
                        "counter": counter,
                        "last_counter": last,
                        "key_set_id": key_set.id,
                    }),
                    observed_at: at,
                },
                ctx,
            )
            .await?;
        Err(AppError::Conflict { code, message })
    }

    async fn translate_pin(
        &self,
        block: &[u8],
        pin_key: &SecretKey,
        device_format: PinBlockFormat,
        card: &CardData,
    ) -> AppResult<EncryptedPinBlock> {
        let zpk = self.ports.keys.zone_pin_key(self.processor.name()).await?;
        let refused = |_| AppError::Unprocessable {
            code: "pin_block_invalid",
            message: "the PIN block does not decrypt to a valid PIN block",
        };
        let block = EncryptedPinBlock::from_bytes(block).map_err(refused)?;
        let pan = Pan::new(card.expose_pan()).map_err(refused)?;
        pinblock::translate(
            &block,
            (pin_key, device_format),
            (&zpk.key, zpk.format),
            Some(&pan),
            &mut OsRandom,
        )
        .map_err(refused)
    }

    /// A sale whose worker died after recording it (found through a takeover of its
    /// idempotency key): the processor's answer was lost with the worker, so a sale still
    /// `PENDING` becomes `FAILED` (`processor_outcome_unknown`) for reconciliation, never
    /// paid again; a decided one is answered as it stands.
    async fn recover_sale(&self, recorded: TransactionRecord) -> AppResult<TransactionView> {
        if recorded.state != TransactionState::Pending {
            return Ok(TransactionView::from(&recorded));
        }
        let id = recorded.id;
        let decided = self
            .repo
            .decide(
                id,
                &Decision {
                    state: TransactionState::Failed,
                    response_code: None,
                    authorisation_code: None,
                    decline_reason: Some("processor_outcome_unknown".to_owned()),
                    arpc: None,
                    processor_reference: None,
                    at: now_millis(),
                },
            )
            .await?;
        if decided {
            // The card data died with the worker: no reversal can be sent from here.
            tracing::error!(transaction = %id, "sale lost its worker; needs reconciliation");
            metrics::counter!("payments_unreconciled_total").increment(1);
        }
        // Failed here, or decided by another retry meanwhile: the row says how it stands.
        let stored = self
            .repo
            .find(id)
            .await?
            .ok_or(AppError::NotFound("transaction"))?;
        Ok(TransactionView::from(&stored))
    }

    /// Sends the reversal of a sale the processor did not answer and records it.
    async fn automatic_reversal(
        &self,
        record: &TransactionRecord,
        original: &AuthorizationMessage<'_>,
    ) -> AppResult<()> {
        let answer = self.processor.reverse_unanswered(original).await;
        let acknowledged = answer.as_ref().is_ok_and(|answer| answer.accepted);
        let (response_code, reason) = match &answer {
            Ok(answer) => (Some(answer.response_code.clone()), "processor_timeout"),
            Err(error) => (None, error.code()),
        };
        if !acknowledged {
            tracing::error!(transaction = %record.id, "automatic reversal not acknowledged");
        }
        metrics::counter!("payments_automatic_reversals_total").increment(1);
        self.repo
            .mark_reversed(
                record.id,
                "processor_timeout",
                acknowledged,
                &TransactionEvent {
                    kind: "reversal".to_owned(),
                    amount_minor: record.amount_minor,
                    response_code,
                    actor: "system:payments".to_owned(),
                    reason: Some(reason.to_owned()),
                    at: now_millis(),
                },
            )
            .await
    }
}

fn card_error(error: card::CardDataError) -> AppError {
    AppError::Unprocessable {
        code: error.code(),
        message: match error {
            card::CardDataError::Undecryptable => {
                "card data does not decrypt under the KSN's data key"
            }
            card::CardDataError::Invalid => "card data has an invalid PAN, expiry or track 2",
            card::CardDataError::EmvMalformed => "EMV data is not valid BER-TLV",
            card::CardDataError::EmvCardholderData => {
                "EMV data must not contain cardholder data in clear"
            }
            card::CardDataError::EmvIncomplete => {
                "EMV data lacks the application cryptogram, amount or currency"
            }
            card::CardDataError::EmvAmountMismatch => "EMV amount differs from the request amount",
            card::CardDataError::EmvCurrencyMismatch => {
                "EMV currency differs from the request currency"
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_set(scheme: DukptScheme, initial_key_id: &[u8]) -> KeySetInfo {
        KeySetInfo {
            id: Uuid::nil(),
            device_id: crate::domain::DeviceId(Uuid::nil()),
            version: 1,
            scheme,
            initial_key_id: initial_key_id.to_vec(),
            bdk_id: Uuid::nil(),
        }
    }

    fn code(result: AppResult<(ParsedKsn, u32)>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(error) => error.code(),
        }
    }

    #[test]
    fn tdes_ksn_yields_the_published_pin_key() {
        // ANSI X9.24-1:2009 A.4 test data: BDK 0123456789ABCDEFFEDCBA9876543210, KSN
        // FFFF9876543210E00001: current key 042666B49184CFA368DE9628D0397BC9, with the PIN
        // variant of Table A-1 applied 042666B49184CF5C68DE9628D0397B36.
        let bdk =
            SecretKey::tdes(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
        let host = DukptHost::Tdes(Box::new(tdes_dukpt::BaseDerivationKey::new(&bdk).unwrap()));
        let set = key_set(
            DukptScheme::Tdes,
            &hex::decode("FFFF9876543210E00000").unwrap(),
        );
        let (ksn, counter) =
            ParsedKsn::parse(&set, &hex::decode("FFFF9876543210E00001").unwrap()).unwrap();
        assert_eq!(counter, 1);
        let (_, pin, format) = ksn.working_keys(&host).unwrap();
        assert_eq!(
            hex::encode_upper(pin.expose_secret()),
            "042666B49184CF5C68DE9628D0397B36"
        );
        assert_eq!(format, PinBlockFormat::Iso0);
        // Another device's initial KSN, and counter 0, are refused.
        assert_eq!(
            code(ParsedKsn::parse(
                &set,
                &hex::decode("FFFF9876543211E00001").unwrap()
            )),
            "ksn_invalid"
        );
        assert_eq!(
            code(ParsedKsn::parse(
                &set,
                &hex::decode("FFFF9876543210E00000").unwrap()
            )),
            "ksn_invalid"
        );
    }

    #[test]
    fn aes_ksn_must_belong_to_the_key_set() {
        let set = key_set(
            DukptScheme::Aes128,
            &hex::decode("1234567890123456").unwrap(),
        );
        let ksn = |hex_text: &str| ParsedKsn::parse(&set, &hex::decode(hex_text).unwrap());
        assert_eq!(code(ksn("123456789012345600000001")), "ok");
        assert_eq!(code(ksn("123456789012345700000001")), "ksn_invalid");
        assert_eq!(code(ksn("123456789012345600000000")), "ksn_invalid");
        // 17 one-bits: not a counter X9.24-3 6.1 allows.
        assert_eq!(code(ksn("12345678901234560001FFFF")), "ksn_invalid");
        assert_eq!(code(ksn("1234567890123456000001")), "ksn_invalid");
        // A TDES BDK behind an AES key set is a configuration error, not a client error.
        let bdk = SecretKey::tdes(&[0x11; 16]).unwrap();
        let host = DukptHost::Tdes(Box::new(tdes_dukpt::BaseDerivationKey::new(&bdk).unwrap()));
        let (parsed, _) = ksn("123456789012345600000001").unwrap();
        assert_eq!(
            parsed.working_keys(&host).err().map(|e| e.code()),
            Some("internal_error")
        );
    }
}
