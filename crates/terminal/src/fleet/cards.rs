//! The fleet's virtual cards, personalised once per run and copied for every tap.
//!
//! Personalising an `emv-cards` card is the issuer's work: it builds the records and signs the
//! issuer and ICC certificates (two RSA private-key operations). A card is personalised once in
//! its life and tapped many times, so the fleet does the same: each scenario's card is
//! personalised when the run starts and every tap gets a fresh copy of it (a new cardholder
//! presenting the same card, ATC as issued). The tap itself is untouched: the kernel still
//! selects, reads, verifies the certificates and gets the card's dynamic signature and
//! cryptogram on every payment.

use std::collections::HashMap;

use emv_cards::Card;

use super::mix::SCENARIOS;
use crate::payment::CardSourceError;
use crate::payment::card::virtual_cards;

/// The personalised cards of every scenario, by profile name.
#[derive(Clone)]
pub struct CardBook {
    cards: HashMap<String, Card>,
}

impl std::fmt::Debug for CardBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.cards.keys().collect();
        names.sort();
        f.debug_struct("CardBook").field("cards", &names).finish()
    }
}

impl CardBook {
    /// Personalises the card of every scenario the fleet knows ([`SCENARIOS`]).
    ///
    /// # Errors
    /// [`CardSourceError::UnknownCard`] if a scenario names a profile `emv-cards` lacks.
    pub fn for_scenarios() -> Result<Self, CardSourceError> {
        Self::personalise(SCENARIOS.iter().map(|scenario| scenario.card))
    }

    /// Personalises the cards of these profiles.
    ///
    /// # Errors
    /// [`CardSourceError::UnknownCard`] for a name `emv-cards` does not know.
    pub fn personalise<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, CardSourceError> {
        let mut cards = HashMap::new();
        for name in names {
            if cards.contains_key(name) {
                continue;
            }
            let card = Card::profile(name).ok_or_else(|| unknown(name))?;
            cards.insert(name.to_owned(), card);
        }
        Ok(Self { cards })
    }

    /// A fresh copy of the card `name` for one tap, and the PIN its cardholder knows.
    ///
    /// # Errors
    /// [`CardSourceError::UnknownCard`] for a card the book does not hold.
    pub fn tap(&self, name: &str) -> Result<(Card, &'static str), CardSourceError> {
        let card = self.cards.get(name).ok_or_else(|| unknown(name))?;
        Ok((card.clone(), card.test_pin()))
    }
}

fn unknown(name: &str) -> CardSourceError {
    CardSourceError::UnknownCard(name.to_owned(), virtual_cards().join(", "))
}

#[cfg(test)]
mod tests {
    use kernel_host::{Kernel, NativeKernel};

    use super::*;

    #[test]
    fn every_tap_is_a_fresh_card_that_answers_as_a_newly_personalised_one() {
        let book = CardBook::for_scenarios().unwrap();
        let mut kernel = NativeKernel::new();
        for name in ["visa-fdda", "mc-cda", "visa-online-pin"] {
            let params = kernel_host::conformance::params(4_000, 7);
            let mut fresh = Card::profile(name).unwrap();
            let expected = kernel.run(&params, &mut fresh).unwrap();

            let (mut first, pin) = book.tap(name).unwrap();
            assert_eq!(pin, fresh.test_pin());
            let first_run = kernel.run(&params, &mut first).unwrap();
            assert_eq!(first_run.exchanges, expected.exchanges, "{name}");
            assert_eq!(first_run.outcome, expected.outcome, "{name}");
            assert_eq!(first.atc(), fresh.atc());

            // The book's card was not tapped: the next copy starts from the issued state again.
            let (mut second, _) = book.tap(name).unwrap();
            assert_ne!(
                second.atc(),
                first.atc(),
                "{name}: a copy is not the tapped card"
            );
            let second_run = kernel.run(&params, &mut second).unwrap();
            assert_eq!(second_run.exchanges, expected.exchanges, "{name}");
        }
    }

    #[test]
    fn unknown_cards_are_typed() {
        let error = CardBook::personalise(["visa-fdda", "no-such-card"]).unwrap_err();
        assert_eq!(error.code(), "unknown_card");
        let book = CardBook::personalise(["visa-fdda"]).unwrap();
        assert_eq!(book.tap("mc-cda").unwrap_err().code(), "unknown_card");
        assert!(book.tap("visa-fdda").is_ok());
    }
}
