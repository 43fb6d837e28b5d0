//! The payment mix: which scenario each paced payment plays, and what result it must get.
//!
//! A scenario is a virtual card, an amount whose last two digits select the issuer simulator's
//! answer (`..00` approve, `..51` insufficient funds, `..05` do not honour), and for the online
//! PIN card the PIN the cardholder types (the card's own test PIN, or a wrong one). Every result
//! is checked against the scenario's expectation, so a fleet run is also a correctness run.
//!
//! The choice is deterministic (a weighted round robin over the payment's sequence number):
//! two runs with the same options offer the same mix.

use serde::Serialize;

/// What a scenario expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Approved by the issuer.
    Approved,
    /// Declined by the issuer with this ISO 8583 response code.
    Declined(&'static str),
}

/// How the cardholder answers a PIN request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinAnswer {
    /// The card's own test PIN.
    Correct,
    /// A PIN that is not the card's.
    Wrong,
}

/// One scenario of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Stable name, used in `--cards` and in the summary.
    pub name: &'static str,
    /// The `emv-cards` profile tapped.
    pub card: &'static str,
    /// The last two digits of the amount in minor units.
    pub amount_suffix: u64,
    /// The PIN typed if the card asks for one.
    pub pin: PinAnswer,
    /// The result it must get.
    pub expect: Expect,
}

/// Every scenario the fleet knows.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "visa-fdda",
        card: "visa-fdda",
        amount_suffix: 0,
        pin: PinAnswer::Correct,
        expect: Expect::Approved,
    },
    Scenario {
        name: "mc-cda",
        card: "mc-cda",
        amount_suffix: 0,
        pin: PinAnswer::Correct,
        expect: Expect::Approved,
    },
    Scenario {
        name: "visa-online-pin",
        card: "visa-online-pin",
        amount_suffix: 0,
        pin: PinAnswer::Correct,
        expect: Expect::Approved,
    },
    Scenario {
        name: "wrong-pin",
        card: "visa-online-pin",
        amount_suffix: 0,
        pin: PinAnswer::Wrong,
        expect: Expect::Declined("55"),
    },
    Scenario {
        name: "insufficient-funds",
        card: "mc-cda",
        amount_suffix: 51,
        pin: PinAnswer::Correct,
        expect: Expect::Declined("51"),
    },
    Scenario {
        name: "do-not-honour",
        card: "visa-fdda",
        amount_suffix: 5,
        pin: PinAnswer::Correct,
        expect: Expect::Declined("05"),
    },
];

/// The default `--cards mix`.
pub const DEFAULT_MIX: &str =
    "visa-fdda=30,mc-cda=30,visa-online-pin=20,wrong-pin=5,insufficient-funds=10,do-not-honour=5";

/// A weighted mix of scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Each scenario once per unit of weight, interleaved (`a b a c a b …`), so a short run
    /// still sees every scenario.
    wheel: Vec<Scenario>,
    weights: Vec<(&'static str, u32)>,
}

impl Mix {
    /// Parses `name=weight,…`, `name` alone (weight 1), or `mix` for [`DEFAULT_MIX`].
    ///
    /// # Errors
    /// A message naming the bad entry: unknown scenario (the known ones are listed), weight
    /// not in 1–1000, or an empty mix.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = if spec.trim() == "mix" {
            DEFAULT_MIX
        } else {
            spec
        };
        let mut weights: Vec<(&'static str, u32)> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, weight) = entry.split_once('=').unwrap_or((entry, "1"));
            let scenario = SCENARIOS
                .iter()
                .find(|s| s.name == name.trim())
                .ok_or_else(|| {
                    let known: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
                    format!(
                        "unknown scenario {:?} (known: {}, or `mix`)",
                        name.trim(),
                        known.join(", ")
                    )
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| format!("weight of {} must be 1 to 1000", scenario.name))?;
            match weights.iter_mut().find(|(n, _)| *n == scenario.name) {
                Some(existing) => existing.1 += weight,
                None => weights.push((scenario.name, weight)),
            }
        }
        if weights.is_empty() {
            return Err("the mix names no scenario".to_owned());
        }
        // Reduce by the common divisor so `a=50,b=50` interleaves like `a,b`.
        let divisor = weights.iter().fold(0, |g, (_, w)| gcd(g, *w));
        let weights: Vec<_> = weights.into_iter().map(|(n, w)| (n, w / divisor)).collect();
        let max = weights.iter().map(|(_, w)| *w).max().unwrap_or(1);
        let mut wheel = Vec::new();
        for round in 0..max {
            for (name, weight) in &weights {
                if round < *weight
                    && let Some(scenario) = SCENARIOS.iter().find(|s| s.name == *name)
                {
                    wheel.push(*scenario);
                }
            }
        }
        Ok(Self { wheel, weights })
    }

    /// The scenario of payment number `index`.
    #[must_use]
    pub fn pick(&self, index: u64) -> Scenario {
        let len = self.wheel.len() as u64;
        self.wheel[usize::try_from(index % len).unwrap_or(0)]
    }

    /// The amount of payment number `index` in minor units: 1.00 to 25.00 major units (below
    /// the usual contactless CVM limit of 30.00, so only the online PIN card asks for a PIN)
    /// plus the scenario's suffix.
    #[must_use]
    pub fn amount_minor(&self, index: u64, scenario: &Scenario) -> u64 {
        (1 + index % 25) * 100 + scenario.amount_suffix
    }

    /// The scenarios and their reduced weights, in the order given.
    #[must_use]
    pub fn weights(&self) -> &[(&'static str, u32)] {
        &self.weights
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_interleaves() {
        let mix = Mix::parse("visa-fdda=2, wrong-pin").unwrap();
        let names: Vec<_> = (0..6).map(|i| mix.pick(i).name).collect();
        assert_eq!(
            names,
            [
                "visa-fdda",
                "wrong-pin",
                "visa-fdda",
                "visa-fdda",
                "wrong-pin",
                "visa-fdda"
            ]
        );
        let even = Mix::parse("mc-cda=50,visa-fdda=50").unwrap();
        assert_eq!(even.weights(), [("mc-cda", 1), ("visa-fdda", 1)]);
        let default = Mix::parse("mix").unwrap();
        assert_eq!(default.weights().len(), SCENARIOS.len());
        // Over one turn of the wheel every scenario appears as often as its weight says.
        let turn: u64 = default.weights().iter().map(|(_, w)| u64::from(*w)).sum();
        let wrong = (0..turn)
            .filter(|&i| default.pick(i).name == "wrong-pin")
            .count();
        assert_eq!(wrong, 1);
    }

    #[test]
    fn amounts_carry_the_scenario_suffix() {
        let mix = Mix::parse("insufficient-funds").unwrap();
        let scenario = mix.pick(7);
        assert_eq!(mix.amount_minor(7, &scenario), 851);
        assert_eq!(mix.amount_minor(49, &scenario), 2551);
        assert!((0..100).all(|i| mix.amount_minor(i, &scenario) < 3000));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        assert!(
            Mix::parse("amex")
                .unwrap_err()
                .contains("unknown scenario \"amex\"")
        );
        assert!(Mix::parse("visa-fdda=0").unwrap_err().contains("1 to 1000"));
        assert!(Mix::parse("visa-fdda=x").unwrap_err().contains("1 to 1000"));
        assert!(Mix::parse(" , ").unwrap_err().contains("no scenario"));
    }
}
