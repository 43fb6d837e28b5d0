//! Kernel 3 (EMV Contactless Book C-3, qVSDC path): GET PROCESSING OPTIONS with the TTQ in the
//! PDOL, records from the AFL, the card's decision from the CID (or the Issuer Application Data),
//! fDDA for offline approvals, and CVM from the CTQ.
//!
//! Book C-3 sections covered: 5.2 (initiate application processing: PDOL must ask for the TTQ;
//! GPO status `6984` try another interface, `6985` select next, `6986` try again), 5.3 (read
//! application data), 5.4 (the card's decision and the data the online request needs), 5.5
//! (offline data authentication: fDDA over UN, amount, currency and, from version `01`, the Card
//! Authentication Related Data, in a signature of Signed Data Format `95`; for offline approvals,
//! and for online authorisations when the TTQ says "offline data authentication for online
//! authorisations supported" and the card returned a signature), 5.6 (processing restrictions: expired application with the CTQ
//! "go online if expired"), 5.7 (cardholder verification from CTQ and TTQ).
//! The magnetic-stripe path (MSD) is out of scope: a card that answers with format 1 ends the
//! transaction.

use alloc::vec::Vec;

use crate::apdu::{Command, CryptogramType, Response, StatusKind};
use crate::cvm::{self, Cvm};
use crate::dol::Dol;
use crate::entry_point::Preprocessing;
use crate::kernel::{
    GpoResponse, KernelData, KernelStep, OutcomeParts, TransactionParams, card_error,
    end_application, is_expired, outcome, parse_gpo, record_list, store_record,
};
use crate::oda::{self, Certificate, FddaInput, OdaError, OdaRecord};
use crate::outcome::{OdaMethod, OdaStatus, OutcomeKind, Phase, Reason};
use crate::tlv::Tag;
use crate::tvr::{Tsi, TsiBit, Tvr, TvrBit};

const KERNEL_ID: u8 = 3;

/// TTQ byte 1 b5: EMV contact chip supported.
const TTQ_CONTACT_CHIP: (usize, u8) = (0, 0x10);
/// TTQ byte 1 b1: offline data authentication for online authorisations supported.
const TTQ_ODA_FOR_ONLINE: (usize, u8) = (0, 0x01);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitGpo,
    ReadRecords { next: usize },
}

/// A Kernel 3 run.
#[derive(Debug, Clone)]
pub(crate) struct C3 {
    state: State,
    data: KernelData,
    adf_name: Vec<u8>,
    gpo: Option<GpoResponse>,
    records: Vec<(u8, u8, bool)>,
    oda_records: Vec<(u8, Vec<u8>)>,
    tvr: Tvr,
    /// The TVR sent to the card in the PDOL data of GET PROCESSING OPTIONS, when the PDOL asked
    /// for it: the value the card's cryptogram covers.
    tvr_sent: Option<Vec<u8>>,
    tsi: Tsi,
    ttq: [u8; 4],
}

impl C3 {
    /// Starts after final selection: builds the PDOL data and sends GPO.
    pub(crate) fn start(
        data: KernelData,
        adf_name: &[u8],
        pdol: Option<&[u8]>,
        pre: &Preprocessing,
    ) -> (Self, KernelStep) {
        let mut kernel = Self {
            state: State::AwaitGpo,
            data,
            adf_name: adf_name.to_vec(),
            gpo: None,
            records: Vec::new(),
            oda_records: Vec::new(),
            tvr: Tvr::new(),
            tvr_sent: None,
            tsi: Tsi::new(),
            ttq: pre.ttq,
        };
        let phase = Phase::SelectApplication;
        let Some(pdol) = pdol else {
            // C-3 5.2: the PDOL must be present and ask for the TTQ.
            let reason = Reason::MissingData {
                phase,
                tag: Tag::Pdol,
            };
            let step = KernelStep::Done(end_application(reason, Tvr::new(), Tsi::new(), KERNEL_ID));
            return (kernel, step);
        };
        let dol = match Dol::parse(pdol) {
            Ok(dol) if dol.contains(Tag::TerminalTransactionQualifiers) => dol,
            Ok(_) => {
                let reason = Reason::MissingData {
                    phase,
                    tag: Tag::TerminalTransactionQualifiers,
                };
                let step =
                    KernelStep::Done(end_application(reason, Tvr::new(), Tsi::new(), KERNEL_ID));
                return (kernel, step);
            }
            Err(error) => {
                let reason = Reason::MalformedResponse {
                    phase,
                    error: crate::ErrorCode::code(&error),
                };
                let step =
                    KernelStep::Done(end_application(reason, Tvr::new(), Tsi::new(), KERNEL_ID));
                return (kernel, step);
            }
        };
        let pdol_data = dol.build(&kernel.data);
        if dol.contains(Tag::TerminalVerificationResults) {
            kernel.tvr_sent = Some(
                kernel
                    .data
                    .terminal
                    .get(&Tag::TerminalVerificationResults)
                    .cloned()
                    .unwrap_or_else(|| alloc::vec![0; 5]),
            );
        }
        kernel
            .data
            .terminal
            .insert(Tag::CommandTemplate, pdol_data.clone());
        let step = match Command::get_processing_options(&pdol_data) {
            Ok(command) => KernelStep::Send(command, Phase::GetProcessingOptions),
            Err(_) => KernelStep::Done(end_application(
                Reason::MalformedResponse {
                    phase,
                    error: "pdol_too_long",
                },
                Tvr::new(),
                Tsi::new(),
                KERNEL_ID,
            )),
        };
        (kernel, step)
    }

    /// Handles the card's response to the last command.
    pub(crate) fn resume(
        &mut self,
        response: &Response<'_>,
        params: &TransactionParams,
    ) -> KernelStep {
        match self.state.clone() {
            State::AwaitGpo => self.on_gpo(response, params),
            State::ReadRecords { next } => self.on_record(response, next, params),
        }
    }

    fn on_gpo(&mut self, response: &Response<'_>, params: &TransactionParams) -> KernelStep {
        let phase = Phase::GetProcessingOptions;
        match response.sw.kind() {
            StatusKind::Success => {}
            StatusKind::ReferencedDataInvalidated => {
                return self.done(
                    OutcomeKind::TryAnotherInterface,
                    Reason::CardAskedOtherInterface,
                );
            }
            StatusKind::ConditionsNotSatisfied => return KernelStep::SelectNext,
            StatusKind::CommandNotAllowed => {
                return self.done(
                    OutcomeKind::TryAgain,
                    Reason::CardError {
                        phase,
                        sw: response.sw,
                    },
                );
            }
            _ => {
                return KernelStep::Done(card_error(
                    response, phase, self.tvr, self.tsi, KERNEL_ID,
                ));
            }
        }
        let gpo = match parse_gpo(response.data, &mut self.data) {
            Ok(gpo) => gpo,
            Err(reason) => return self.done(OutcomeKind::EndApplication, reason),
        };
        if !gpo.format2 {
            // Format 1 is the MSD / contact VSDC answer, not qVSDC.
            return self.done(OutcomeKind::EndApplication, Reason::MagstripeModeOnly);
        }
        self.records = record_list(&gpo.afl);
        self.gpo = Some(gpo);
        self.next_record(0, params)
    }

    fn next_record(&mut self, next: usize, params: &TransactionParams) -> KernelStep {
        match self.records.get(next) {
            Some(&(sfi, record, _)) => match Command::read_record(sfi, record) {
                Ok(command) => {
                    self.state = State::ReadRecords { next };
                    KernelStep::Send(command, Phase::ReadRecord)
                }
                Err(_) => self.done(
                    OutcomeKind::EndApplication,
                    Reason::MalformedResponse {
                        phase: Phase::ReadRecord,
                        error: "afl_entry",
                    },
                ),
            },
            None => self.complete(params),
        }
    }

    fn on_record(
        &mut self,
        response: &Response<'_>,
        next: usize,
        params: &TransactionParams,
    ) -> KernelStep {
        if !response.sw.is_success() {
            return KernelStep::Done(card_error(
                response,
                Phase::ReadRecord,
                self.tvr,
                self.tsi,
                KERNEL_ID,
            ));
        }
        if let Err(reason) = store_record(response.data, &mut self.data) {
            return self.done(OutcomeKind::EndApplication, reason);
        }
        if let Some(&(sfi, _, true)) = self.records.get(next) {
            self.oda_records.push((sfi, response.data.to_vec()));
        }
        self.next_record(next + 1, params)
    }

    /// The card's decision (C-3 5.4) and what follows from it.
    fn complete(&mut self, params: &TransactionParams) -> KernelStep {
        let phase = Phase::Processing;
        for tag in [
            Tag::ApplicationTransactionCounter,
            Tag::ApplicationCryptogram,
        ] {
            if self.data.card(tag).is_none() {
                return self.done(
                    OutcomeKind::EndApplication,
                    Reason::MissingData { phase, tag },
                );
            }
        }
        if self.data.card(Tag::Track2EquivalentData).is_none()
            && self.data.card(Tag::ApplicationPan).is_none()
        {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::Track2EquivalentData,
                },
            );
        }
        let Some(cid) = self.cryptogram_information() else {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::CryptogramInformationData,
                },
            );
        };
        let online_capable = params.config.online_capable;
        let ctq = self
            .data
            .card(Tag::CardTransactionQualifiers)
            .map(<[u8]>::to_vec);
        let contact_chip = cvm::has_bit(&self.ttq, TTQ_CONTACT_CHIP);
        match CryptogramType::from_bits(cid) {
            Some(CryptogramType::Aac) => self.done(OutcomeKind::Declined, Reason::CardDeclined),
            Some(CryptogramType::Arqc) => {
                if !online_capable {
                    return self.done(OutcomeKind::Declined, Reason::OnlineNotPossible);
                }
                // C-3 5.5: with "offline data authentication for online authorisations
                // supported" in the TTQ, a signature the card returns with its ARQC is verified
                // like the one of an offline approval, and a failure is handled the same way.
                let oda = if cvm::has_bit(&self.ttq, TTQ_ODA_FOR_ONLINE)
                    && self.data.card(Tag::SignedDynamicApplicationData).is_some()
                {
                    match self.fdda(params) {
                        Ok(()) => {
                            self.tsi.set(TsiBit::OdaPerformed);
                            OdaStatus::Succeeded(OdaMethod::Fdda)
                        }
                        Err(error) => {
                            return self.fdda_failed(error, params, ctq.as_deref(), contact_chip);
                        }
                    }
                } else {
                    OdaStatus::NotPerformed
                };
                self.online(
                    ctq.as_deref(),
                    contact_chip,
                    Reason::CardRequestedOnline,
                    oda,
                )
            }
            Some(CryptogramType::Tc) => self.offline(params, ctq.as_deref(), contact_chip),
            None => self.done(
                OutcomeKind::EndApplication,
                Reason::InvalidCryptogramType(cid),
            ),
        }
    }

    /// The CID from `9F27`, or, when the card leaves `9F27` out (C-3 5.4), from the Issuer
    /// Application Data: in the Visa IAD format (length, DKI, CVN, CVR length, CVR...) byte 5 is
    /// CVR byte 1, whose bits b6-b5 give the cryptogram type of the first GENERATE AC
    /// (`00` AAC, `01` TC, `10` ARQC).
    fn cryptogram_information(&self) -> Option<u8> {
        if let Some(&[cid]) = self.data.card(Tag::CryptogramInformationData) {
            return Some(cid);
        }
        let iad = self.data.card(Tag::IssuerApplicationData)?;
        let cvr_byte2 = *iad.get(4)?;
        Some((cvr_byte2 & 0x30) << 2)
    }

    /// An Online Request with the CVM of C-3 5.7 and `oda`, the result of fDDA if it ran.
    fn online(
        &mut self,
        ctq: Option<&[u8]>,
        contact_chip: bool,
        reason: Reason,
        oda: OdaStatus,
    ) -> KernelStep {
        let Some(selected) = cvm::select_c3(&self.ttq, ctq, true) else {
            return self.no_cvm(contact_chip, oda);
        };
        self.tsi.set(TsiBit::CardholderVerificationPerformed);
        self.finish(OutcomeKind::OnlineRequest, reason, Some(selected), oda)
    }

    fn no_cvm(&mut self, contact_chip: bool, oda: OdaStatus) -> KernelStep {
        self.tvr.set(TvrBit::CardholderVerificationNotSuccessful);
        let kind = if contact_chip {
            OutcomeKind::TryAnotherInterface
        } else {
            OutcomeKind::Declined
        };
        self.finish(kind, Reason::CvmNotSatisfied, None, oda)
    }

    /// fDDA failed (C-3 5.5): TVR "DDA failed" (and "ICC data missing" when a data object was
    /// missing), TSI "offline data authentication performed", then the CTQ decides: online if the
    /// card asks for it and the reader is online capable, another interface if the card asks
    /// for it and the reader has a contact chip, otherwise declined. Every outcome carries
    /// `OdaStatus::Failed(Fdda, error)`, so `oda`, the reason and the TVR agree.
    fn fdda_failed(
        &mut self,
        error: OdaError,
        params: &TransactionParams,
        ctq: Option<&[u8]>,
        contact_chip: bool,
    ) -> KernelStep {
        self.tsi.set(TsiBit::OdaPerformed);
        self.tvr.set(TvrBit::DdaFailed);
        if matches!(error, OdaError::MissingData(_)) {
            self.tvr.set(TvrBit::IccDataMissing);
        }
        let oda = OdaStatus::Failed(OdaMethod::Fdda, error);
        let ctq_bit = |bit| ctq.is_some_and(|ctq| cvm::has_bit(ctq, bit));
        if ctq_bit(cvm::ctq::ONLINE_IF_ODA_FAILS) && params.config.online_capable {
            return self.online(ctq, contact_chip, Reason::OdaFailed(error), oda);
        }
        let kind = if ctq_bit(cvm::ctq::SWITCH_INTERFACE_IF_ODA_FAILS) && contact_chip {
            OutcomeKind::TryAnotherInterface
        } else {
            OutcomeKind::Declined
        };
        self.finish(kind, Reason::OdaFailed(error), None, oda)
    }

    fn offline(
        &mut self,
        params: &TransactionParams,
        ctq: Option<&[u8]>,
        contact_chip: bool,
    ) -> KernelStep {
        let online_capable = params.config.online_capable;
        if is_expired(&self.data, params.date) {
            self.tvr.set(TvrBit::ExpiredApplication);
            if ctq.is_some_and(|ctq| cvm::has_bit(ctq, cvm::ctq::ONLINE_IF_EXPIRED))
                && online_capable
            {
                return self.online(
                    ctq,
                    contact_chip,
                    Reason::ApplicationExpired,
                    OdaStatus::NotPerformed,
                );
            }
            return self.done(OutcomeKind::Declined, Reason::ApplicationExpired);
        }
        let oda = match self.fdda(params) {
            Ok(()) => {
                self.tsi.set(TsiBit::OdaPerformed);
                OdaStatus::Succeeded(OdaMethod::Fdda)
            }
            Err(error) => return self.fdda_failed(error, params, ctq, contact_chip),
        };
        let Some(selected) = cvm::select_c3(&self.ttq, ctq, false) else {
            return self.no_cvm(contact_chip, oda);
        };
        if selected != Cvm::NoCvm {
            self.tsi.set(TsiBit::CardholderVerificationPerformed);
        }
        self.finish(
            OutcomeKind::Approved,
            Reason::CardApproved,
            Some(selected),
            oda,
        )
    }

    /// fDDA (C-3 5.5 with Book 2 6.3-6.5).
    fn fdda(&self, params: &TransactionParams) -> Result<(), OdaError> {
        let aip = self.gpo.as_ref().map_or([0; 2], |gpo| gpo.aip);
        if aip[0] & super::aip::DDA == 0 {
            return Err(OdaError::NotSupported);
        }
        let card = |tag: Tag| self.data.card(tag).ok_or(OdaError::MissingData(tag));
        let rid: [u8; 5] = self
            .adf_name
            .get(..5)
            .and_then(|rid| rid.try_into().ok())
            .ok_or(OdaError::CaKeyNotFound)?;
        let &[ca_index] = card(Tag::CaPublicKeyIndexIcc)? else {
            return Err(OdaError::Length);
        };
        let ca = params.config.ca_keys.find(&rid, ca_index, params.date)?;
        let pan = self
            .data
            .card(Tag::ApplicationPan)
            .map(<[u8]>::to_vec)
            .or_else(|| pan_from_track2(self.data.card(Tag::Track2EquivalentData)?))
            .ok_or(OdaError::MissingData(Tag::ApplicationPan))?;
        let issuer = oda::recover_issuer_key(
            ca,
            Certificate {
                certificate: card(Tag::IssuerPublicKeyCertificate)?,
                remainder: self.data.card(Tag::IssuerPublicKeyRemainder).unwrap_or(&[]),
                exponent: card(Tag::IssuerPublicKeyExponent)?,
            },
            &pan,
            params.date,
            params.config.ca_keys.revocations(),
        )?;
        let records: Vec<OdaRecord<'_>> = self
            .oda_records
            .iter()
            .map(|(sfi, data)| OdaRecord { sfi: *sfi, data })
            .collect();
        let static_data = oda::static_data_to_authenticate(
            &records,
            self.data.card(Tag::StaticDataAuthenticationTagList),
            &aip,
        )?;
        let icc = oda::recover_icc_key(
            &issuer,
            Certificate {
                certificate: card(Tag::IccPublicKeyCertificate)?,
                remainder: self.data.card(Tag::IccPublicKeyRemainder).unwrap_or(&[]),
                exponent: card(Tag::IccPublicKeyExponent)?,
            },
            &pan,
            &static_data,
            params.date,
        )?;
        let terminal =
            |tag: Tag| -> &[u8] { self.data.terminal.get(&tag).map_or(&[], Vec::as_slice) };
        oda::verify_fdda(
            &icc,
            card(Tag::SignedDynamicApplicationData)?,
            FddaInput {
                unpredictable_number: terminal(Tag::UnpredictableNumber),
                amount_authorised: terminal(Tag::AmountAuthorised),
                currency_code: terminal(Tag::TransactionCurrencyCode),
                card_authentication_related_data: self
                    .data
                    .card(Tag::CardAuthenticationRelatedData),
            },
        )?;
        Ok(())
    }

    fn done(&mut self, kind: OutcomeKind, reason: Reason) -> KernelStep {
        self.finish(kind, reason, None, OdaStatus::NotPerformed)
    }

    /// The outcome. Its `tvr` is the reader's final TVR (what the kernel found: "DDA failed",
    /// "expired application", ...). The data record for the authorisation message carries in
    /// `95` the TVR the card was sent in GET PROCESSING OPTIONS instead, when the PDOL asked for
    /// it: Kernel 3 cards compute their cryptogram in GPO over the PDOL data (C-3 5.2, 5.4), so
    /// the issuer can verify the ARQC only over that value; what the reader found afterwards
    /// travels beside it (the outcome's reason, `oda` and `tvr`), never inside the cryptogram's
    /// data.
    fn finish(
        &mut self,
        kind: OutcomeKind,
        reason: Reason,
        cvm: Option<Cvm>,
        oda: OdaStatus,
    ) -> KernelStep {
        let mut result = outcome(
            OutcomeParts {
                kind,
                reason,
                cvm,
                cvm_results: None,
                oda,
                tvr: self.tvr,
                tsi: self.tsi,
                kernel: KERNEL_ID,
            },
            &mut self.data,
            &self.adf_name,
        );
        if let Some(sent) = &self.tvr_sent {
            result.data.set(Tag::TerminalVerificationResults, sent);
        }
        KernelStep::Done(result)
    }
}

/// The PAN from Track 2 Equivalent Data (digits up to the separator `D`), as `cn`.
fn pan_from_track2(track2: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = track2
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .take_while(|nibble| *nibble != 0x0D)
        .collect();
    if digits.is_empty() || digits.len() > 19 || digits.iter().any(|digit| *digit > 9) {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    for pair in digits.chunks(2) {
        out.push((pair[0] << 4) | pair.get(1).copied().unwrap_or(0x0F));
    }
    Some(out)
}
