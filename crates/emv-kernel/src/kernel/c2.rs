//! Kernel 2 (EMV Contactless Book C-2, EMV mode): GET PROCESSING OPTIONS, READ RECORD,
//! processing restrictions, CVM selection, terminal risk management, terminal action analysis and
//! GENERATE AC with CDA.
//!
//! Book C-2 sections covered: 3.2 and 6 (the EMV mode flow: GPO, records from the AFL, AIP byte 2
//! b8 "EMV mode supported"), 7.5 (CVM Selection, see [`crate::cvm::select_c2`]), 7.6 (processing
//! restrictions), 7.7 (terminal risk management: Reader Contactless Floor Limit), 7.8 (terminal
//! action analysis with TAC/IAC), 7.9 and Book 2 6.6 (GENERATE AC with CDA requested; the
//! cryptogram is taken from the verified signature). Certificates are recovered before GENERATE
//! AC so that a CDA failure known in advance shows in the TVR that terminal action analysis reads.
//! Mag-stripe mode, relay resistance, Data Storage and the second GENERATE AC (two-tap) are out of
//! scope.

use alloc::vec::Vec;

use crate::apdu::{Command, CryptogramType, Response, StatusKind};
use crate::cvm::{self, CvmContext, CvmList};
use crate::dol::Dol;
use crate::entry_point::{AidConfig, Preprocessing};
use crate::kernel::{
    GpoResponse, KernelData, KernelStep, OutcomeParts, TransactionParams, aip, card_error,
    end_application, outcome, parse_gpo, processing_restrictions, record_list, store_record,
    terminal_action_analysis,
};
use crate::oda::{self, CdaInput, Certificate, IccPublicKey, OdaError, OdaRecord};
use crate::outcome::{OdaMethod, OdaStatus, OutcomeKind, Phase, Reason};
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, TsiBit, Tvr, TvrBit};

const KERNEL_ID: u8 = 2;

#[derive(Debug, Clone)]
enum State {
    AwaitGpo,
    ReadRecords {
        next: usize,
    },
    AwaitGenerateAc {
        requested: CryptogramType,
        icc_key: Option<IccPublicKey>,
        cdol1_data: Vec<u8>,
    },
}

/// A Kernel 2 run.
#[derive(Debug, Clone)]
pub(crate) struct C2 {
    state: State,
    data: KernelData,
    adf_name: Vec<u8>,
    pre: Preprocessing,
    gpo: Option<GpoResponse>,
    records: Vec<(u8, u8, bool)>,
    oda_records: Vec<(u8, Vec<u8>)>,
    pdol_data: Vec<u8>,
    tvr: Tvr,
    tsi: Tsi,
    oda: OdaStatus,
    cvm: Option<cvm::CvmDecision>,
}

impl C2 {
    /// Starts after final selection: builds the PDOL data (if the card has a PDOL) and sends GPO.
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
            pre: *pre,
            gpo: None,
            records: Vec::new(),
            oda_records: Vec::new(),
            pdol_data: Vec::new(),
            tvr: Tvr::new(),
            tsi: Tsi::new(),
            oda: OdaStatus::NotPerformed,
            cvm: None,
        };
        if let Some(pdol) = pdol {
            match Dol::parse(pdol) {
                Ok(dol) => kernel.pdol_data = dol.build(&kernel.data),
                Err(error) => {
                    let reason = Reason::MalformedResponse {
                        phase: Phase::SelectApplication,
                        error: crate::ErrorCode::code(&error),
                    };
                    let step = KernelStep::Done(end_application(
                        reason,
                        Tvr::new(),
                        Tsi::new(),
                        KERNEL_ID,
                    ));
                    return (kernel, step);
                }
            }
        }
        let step = match Command::get_processing_options(&kernel.pdol_data) {
            Ok(command) => KernelStep::Send(command, Phase::GetProcessingOptions),
            Err(_) => KernelStep::Done(end_application(
                Reason::MalformedResponse {
                    phase: Phase::SelectApplication,
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
        config: &AidConfig,
    ) -> KernelStep {
        match self.state.clone() {
            State::AwaitGpo => self.on_gpo(response, params, config),
            State::ReadRecords { next } => self.on_record(response, next, params, config),
            State::AwaitGenerateAc {
                requested,
                icc_key,
                cdol1_data,
            } => self.on_generate_ac(response, requested, icc_key.as_ref(), &cdol1_data, params),
        }
    }

    fn on_gpo(
        &mut self,
        response: &Response<'_>,
        params: &TransactionParams,
        config: &AidConfig,
    ) -> KernelStep {
        let phase = Phase::GetProcessingOptions;
        match response.sw.kind() {
            StatusKind::Success => {}
            StatusKind::ConditionsNotSatisfied => return KernelStep::SelectNext,
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
        if gpo.aip[1] & aip::EMV_MODE == 0 {
            return self.done(OutcomeKind::TryAnotherInterface, Reason::MagstripeModeOnly);
        }
        if gpo.afl.is_empty() {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::ApplicationFileLocator,
                },
            );
        }
        self.records = record_list(&gpo.afl);
        self.gpo = Some(gpo);
        self.next_record(0, params, config)
    }

    fn next_record(
        &mut self,
        next: usize,
        params: &TransactionParams,
        config: &AidConfig,
    ) -> KernelStep {
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
            None => self.after_records(params, config),
        }
    }

    fn on_record(
        &mut self,
        response: &Response<'_>,
        next: usize,
        params: &TransactionParams,
        config: &AidConfig,
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
        self.next_record(next + 1, params, config)
    }

    /// Everything between the last record and GENERATE AC.
    fn after_records(&mut self, params: &TransactionParams, config: &AidConfig) -> KernelStep {
        let phase = Phase::Processing;
        for tag in [
            Tag::ApplicationPan,
            Tag::ApplicationExpirationDate,
            Tag::Cdol1,
        ] {
            if self.data.card(tag).is_none() {
                return self.done(
                    OutcomeKind::EndApplication,
                    Reason::MissingData { phase, tag },
                );
            }
        }
        let cdol1 = match self.data.card(Tag::Cdol1).map(Dol::parse) {
            Some(Ok(dol)) => dol,
            _ => {
                return self.done(
                    OutcomeKind::EndApplication,
                    Reason::MalformedResponse {
                        phase,
                        error: "cdol1_malformed",
                    },
                );
            }
        };
        let aip_bytes = self.gpo.as_ref().map_or([0; 2], |gpo| gpo.aip);

        // Processing restrictions (C-2 7.6, Book 3 10.4).
        processing_restrictions(&self.data, params.date, &mut self.tvr);

        // Offline data authentication: CDA when both sides support it (C-2 7.3).
        let cda_supported =
            aip_bytes[0] & aip::CDA != 0 && config.c2.security_capability & 0x08 != 0;
        let icc_key = if cda_supported {
            match self.recover_icc_key(params) {
                Ok(key) => Some(key),
                Err(error) => {
                    self.tvr.set(TvrBit::CdaFailed);
                    if matches!(error, OdaError::MissingData(_)) {
                        self.tvr.set(TvrBit::IccDataMissing);
                    }
                    self.tsi.set(TsiBit::OdaPerformed);
                    self.oda = OdaStatus::Failed(OdaMethod::Cda, error);
                    None
                }
            }
        } else {
            self.tvr.set(TvrBit::OdaNotPerformed);
            None
        };

        // CVM selection (C-2 7.5). Kernel 2 compares strictly: above the Reader CVM Required
        // Limit, the "CVM Required" capability applies.
        let above_cvm_limit = config
            .cvm_required_limit
            .is_some_and(|limit| params.amount > limit);
        let capability = if above_cvm_limit {
            config.c2.cvm_capability_cvm_required
        } else {
            config.c2.cvm_capability_no_cvm_required
        };
        let cvm_list = self.data.card(Tag::CvmList).map(CvmList::parse);
        let cvm_list = match cvm_list {
            Some(Ok(list)) => Some(list),
            Some(Err(_)) => {
                return self.done(
                    OutcomeKind::EndApplication,
                    Reason::MalformedResponse {
                        phase,
                        error: "cvm_list_length",
                    },
                );
            }
            None => None,
        };
        let context = CvmContext {
            amount: params.amount,
            in_application_currency: self.data.card(Tag::ApplicationCurrencyCode)
                == Some(&params.currency_code[..]),
            cash: params.transaction_type == 0x01,
            cashback: params.transaction_type == 0x09,
            unattended: matches!(params.config.terminal_type & 0x0F, 4..=6),
            capability,
        };
        let decision = cvm::select_c2(
            aip_bytes,
            config.c2.kernel_configuration & 0x20 != 0,
            cvm_list.as_ref(),
            above_cvm_limit,
            &context,
            &mut self.tvr,
        );
        if aip_bytes[0] & aip::CARDHOLDER_VERIFICATION != 0 {
            self.tsi.set(TsiBit::CardholderVerificationPerformed);
        }
        self.cvm = Some(decision);

        // Terminal risk management (C-2 7.7): floor limit.
        if self.pre.floor_limit_exceeded {
            self.tvr.set(TvrBit::ExceedsFloorLimit);
        }
        self.tsi.set(TsiBit::TerminalRiskManagementPerformed);

        // Terminal action analysis (C-2 7.8).
        let requested =
            terminal_action_analysis(&self.tvr, config, &self.data, params.config.online_capable);
        self.data
            .terminal
            .insert(Tag::TerminalVerificationResults, self.tvr.bytes().to_vec());
        self.data
            .terminal
            .insert(Tag::CvmResults, decision.results.0.to_vec());
        let cdol1_data = cdol1.build(&self.data);
        let request_cda = icc_key.is_some() && requested != CryptogramType::Aac;
        match Command::generate_ac(requested, request_cda, &cdol1_data) {
            Ok(command) => {
                self.state = State::AwaitGenerateAc {
                    requested,
                    icc_key: if request_cda { icc_key } else { None },
                    cdol1_data,
                };
                KernelStep::Send(command, Phase::GenerateAc)
            }
            Err(_) => self.done(
                OutcomeKind::EndApplication,
                Reason::MalformedResponse {
                    phase,
                    error: "cdol1_too_long",
                },
            ),
        }
    }

    fn recover_icc_key(&self, params: &TransactionParams) -> Result<IccPublicKey, OdaError> {
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
        let pan = card(Tag::ApplicationPan)?;
        let issuer = oda::recover_issuer_key(
            ca,
            Certificate {
                certificate: card(Tag::IssuerPublicKeyCertificate)?,
                remainder: self.data.card(Tag::IssuerPublicKeyRemainder).unwrap_or(&[]),
                exponent: card(Tag::IssuerPublicKeyExponent)?,
            },
            pan,
            params.date,
            params.config.ca_keys.revocations(),
        )?;
        let records: Vec<OdaRecord<'_>> = self
            .oda_records
            .iter()
            .map(|(sfi, data)| OdaRecord { sfi: *sfi, data })
            .collect();
        let aip_bytes = self.gpo.as_ref().map_or([0; 2], |gpo| gpo.aip);
        let static_data = oda::static_data_to_authenticate(
            &records,
            self.data.card(Tag::StaticDataAuthenticationTagList),
            &aip_bytes,
        )?;
        oda::recover_icc_key(
            &issuer,
            Certificate {
                certificate: card(Tag::IccPublicKeyCertificate)?,
                remainder: self.data.card(Tag::IccPublicKeyRemainder).unwrap_or(&[]),
                exponent: card(Tag::IccPublicKeyExponent)?,
            },
            pan,
            &static_data,
            params.date,
        )
    }

    fn on_generate_ac(
        &mut self,
        response: &Response<'_>,
        requested: CryptogramType,
        icc_key: Option<&IccPublicKey>,
        cdol1_data: &[u8],
        params: &TransactionParams,
    ) -> KernelStep {
        let phase = Phase::GenerateAc;
        self.tsi.set(TsiBit::CardRiskManagementPerformed);
        if !response.sw.is_success() {
            return KernelStep::Done(card_error(response, phase, self.tvr, self.tsi, KERNEL_ID));
        }
        let malformed = |error: &'static str| Reason::MalformedResponse { phase, error };
        let template = match tlv::parse_single(response.data) {
            Ok(template) => template,
            Err(error) => {
                return self.done(
                    OutcomeKind::EndApplication,
                    malformed(crate::ErrorCode::code(&error)),
                );
            }
        };
        match template.tag {
            // Format 1: CID (1) | ATC (2) | AC (8) | IAD (optional, up to 32).
            Tag::ResponseMessageTemplateFormat1 => {
                let value = template.value;
                if value.len() < 11 || value.len() > 43 {
                    return self.done(
                        OutcomeKind::EndApplication,
                        malformed("generate_ac_format1_length"),
                    );
                }
                let fields = [
                    (Tag::CryptogramInformationData, &value[0..1]),
                    (Tag::ApplicationTransactionCounter, &value[1..3]),
                    (Tag::ApplicationCryptogram, &value[3..11]),
                    (Tag::IssuerApplicationData, &value[11..]),
                ];
                for (tag, field) in fields {
                    if tag == Tag::IssuerApplicationData && field.is_empty() {
                        continue;
                    }
                    if self.data.card.insert(tag, field.to_vec()).is_some() {
                        return self
                            .done(OutcomeKind::EndApplication, Reason::RedundantData { tag });
                    }
                }
            }
            Tag::ResponseMessageTemplateFormat2 => {
                if let Err(reason) = self.data.add_card_objects(template.value, phase) {
                    return self.done(OutcomeKind::EndApplication, reason);
                }
            }
            _ => {
                return self.done(
                    OutcomeKind::EndApplication,
                    malformed("generate_ac_template"),
                );
            }
        }
        let Some(&[cid]) = self.data.card(Tag::CryptogramInformationData) else {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::CryptogramInformationData,
                },
            );
        };
        if self.data.card(Tag::ApplicationTransactionCounter).is_none() {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::ApplicationTransactionCounter,
                },
            );
        }
        // The card may answer with a lower cryptogram than asked (AAC < ARQC < TC), never higher
        // (Book 3 9.3); b8-b7 = 11 is reserved.
        let rank = |kind: CryptogramType| match kind {
            CryptogramType::Aac => 0,
            CryptogramType::Arqc => 1,
            CryptogramType::Tc => 2,
        };
        let returned = match CryptogramType::from_bits(cid) {
            Some(kind) if rank(kind) <= rank(requested) => kind,
            _ => {
                return self.done(
                    OutcomeKind::EndApplication,
                    Reason::InvalidCryptogramType(cid),
                );
            }
        };
        if let Some(icc) = icc_key
            && returned != CryptogramType::Aac
        {
            self.tsi.set(TsiBit::OdaPerformed);
            let result = match (
                template.tag == Tag::ResponseMessageTemplateFormat2,
                self.data.card(Tag::SignedDynamicApplicationData),
            ) {
                (true, Some(sdad)) => oda::verify_cda(
                    icc,
                    sdad,
                    &CdaInput {
                        unpredictable_number: &params.unpredictable_number,
                        cid,
                        pdol_data: &self.pdol_data,
                        cdol1_data,
                        cdol2_data: None,
                        response_template: template.value,
                    },
                ),
                _ => Err(OdaError::MissingData(Tag::SignedDynamicApplicationData)),
            };
            match result {
                Ok(cda) => {
                    self.data
                        .card
                        .insert(Tag::ApplicationCryptogram, cda.cryptogram.to_vec());
                    self.data
                        .card
                        .insert(Tag::IccDynamicNumber, cda.icc_dynamic_number.clone());
                    self.oda = OdaStatus::Succeeded(OdaMethod::Cda);
                }
                Err(error) => {
                    self.tvr.set(TvrBit::CdaFailed);
                    self.oda = OdaStatus::Failed(OdaMethod::Cda, error);
                    return self.done(OutcomeKind::Declined, Reason::OdaFailed(error));
                }
            }
        }
        if self.data.card(Tag::ApplicationCryptogram).is_none() {
            return self.done(
                OutcomeKind::EndApplication,
                Reason::MissingData {
                    phase,
                    tag: Tag::ApplicationCryptogram,
                },
            );
        }
        match returned {
            CryptogramType::Tc => self.done(OutcomeKind::Approved, Reason::CardApproved),
            CryptogramType::Arqc if params.config.online_capable => {
                self.done(OutcomeKind::OnlineRequest, Reason::CardRequestedOnline)
            }
            CryptogramType::Arqc => self.done(OutcomeKind::Declined, Reason::OnlineNotPossible),
            CryptogramType::Aac if requested == CryptogramType::Aac => {
                self.done(OutcomeKind::Declined, Reason::TerminalDeclined)
            }
            CryptogramType::Aac => self.done(OutcomeKind::Declined, Reason::CardDeclined),
        }
    }

    fn done(&mut self, kind: OutcomeKind, reason: Reason) -> KernelStep {
        let (cvm, cvm_results) = match self.cvm {
            Some(decision) => (Some(decision.cvm), Some(decision.results)),
            None => (None, None),
        };
        KernelStep::Done(outcome(
            OutcomeParts {
                kind,
                reason,
                cvm,
                cvm_results,
                oda: self.oda.clone(),
                tvr: self.tvr,
                tsi: self.tsi,
                kernel: KERNEL_ID,
            },
            &mut self.data,
            &self.adf_name,
        ))
    }
}
