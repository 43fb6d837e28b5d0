//! Reversals and refunds: accepted within the original amount, refused with codes otherwise.

use issuer_sim::{RefundRequest, RequestError, ReversalRequest};

use crate::simulator;

const PAN: &str = "5413330089010434";

fn reversal() -> ReversalRequest<'static> {
    ReversalRequest {
        pan: PAN,
        amount_minor: 2500,
        original_amount_minor: 2500,
        currency_numeric: 840,
        original_authorisation_code: Some("123456"),
    }
}

fn refund() -> RefundRequest<'static> {
    RefundRequest {
        pan: PAN,
        amount_minor: 1000,
        captured_amount_minor: 2500,
        currency_numeric: 840,
        original_authorisation_code: "A1B2C3",
    }
}

#[test]
fn reversals_full_partial_and_after_a_timeout_are_accepted() {
    for request in [
        reversal(),
        ReversalRequest {
            amount_minor: 1,
            ..reversal()
        },
        ReversalRequest {
            original_authorisation_code: None,
            ..reversal()
        },
    ] {
        let response = simulator().reverse(&request);
        assert!(response.is_accepted(), "{request:?}");
        assert_eq!((response.response_code, response.error), ("00", None));
    }
}

#[test]
fn invalid_reversals_are_refused_with_codes() {
    let cases = [
        (
            ReversalRequest {
                amount_minor: 2501,
                ..reversal()
            },
            RequestError::AmountAboveOriginal,
            "13",
        ),
        (
            ReversalRequest {
                amount_minor: 0,
                ..reversal()
            },
            RequestError::AmountZero,
            "13",
        ),
        (
            ReversalRequest {
                pan: "5413330089010999",
                ..reversal()
            },
            RequestError::UnknownCard,
            "14",
        ),
        (
            ReversalRequest {
                pan: "54133300890104x4",
                ..reversal()
            },
            RequestError::PanInvalid,
            "30",
        ),
        (
            ReversalRequest {
                currency_numeric: 0,
                ..reversal()
            },
            RequestError::CurrencyInvalid,
            "30",
        ),
        (
            ReversalRequest {
                original_authorisation_code: Some("12345"),
                ..reversal()
            },
            RequestError::AuthorisationCodeInvalid,
            "30",
        ),
    ];
    for (request, error, code) in cases {
        let response = simulator().reverse(&request);
        assert!(!response.is_accepted());
        assert_eq!(response.error, Some(error), "{request:?}");
        assert_eq!(response.response_code, code);
        assert_eq!(error.response_code(), code);
        assert!(!error.to_string().contains(request.pan) || request.pan.len() < 12);
    }
}

#[test]
fn refunds_up_to_the_captured_amount_are_accepted_and_above_refused() {
    for amount in [1, 1000, 2500] {
        let response = simulator().refund(&RefundRequest {
            amount_minor: amount,
            ..refund()
        });
        assert!(response.is_accepted(), "{amount}");
        assert_eq!(response.response_code, "00");
    }
    let cases = [
        (
            RefundRequest {
                amount_minor: 2501,
                ..refund()
            },
            RequestError::AmountAboveOriginal,
        ),
        (
            RefundRequest {
                amount_minor: 0,
                ..refund()
            },
            RequestError::AmountZero,
        ),
        (
            RefundRequest {
                pan: "4000000000000002",
                ..refund()
            },
            RequestError::UnknownCard,
        ),
        (
            RefundRequest {
                pan: "4761",
                ..refund()
            },
            RequestError::PanInvalid,
        ),
        (
            RefundRequest {
                currency_numeric: 1000,
                ..refund()
            },
            RequestError::CurrencyInvalid,
        ),
        (
            RefundRequest {
                original_authorisation_code: "12 456",
                ..refund()
            },
            RequestError::AuthorisationCodeInvalid,
        ),
    ];
    for (request, error) in cases {
        let response = simulator().refund(&request);
        assert_eq!(response.error, Some(error), "{request:?}");
        assert_eq!(response.response_code, error.response_code());
        assert!(!error.code().is_empty());
    }
}

#[test]
fn adjustment_requests_do_not_print_the_pan() {
    let text = format!("{:?} {:?}", reversal(), refund());
    assert!(!text.contains(PAN), "{text}");
    assert!(text.contains("541333******0434"));
}

/// An approval is refunded and reversed by its reference alone; a reference that does not
/// bind the authorisation code, amount and currency sent with it names nothing.
#[test]
fn follow_ups_by_reference_need_no_pan() {
    use issuer_sim::FollowUpRequest;

    let online = crate::Online::new("mc-cda", 2500);
    let approval = simulator().authorize(&online.request());
    assert!(approval.decision.is_approved());
    let reference = approval
        .reference
        .clone()
        .expect("approvals carry a reference");
    assert_eq!(reference.len(), 16);
    assert!(!reference.contains(&online.pan[6..12]));
    let code = approval.authorisation_code.clone().unwrap();
    let request = FollowUpRequest {
        reference: &reference,
        original_authorisation_code: &code,
        original_amount_minor: 2500,
        currency_numeric: 840,
        amount_minor: 1000,
        limit_minor: 2500,
    };
    let accepted = simulator().refund_referenced(&request);
    assert_eq!((accepted.response_code, accepted.error), ("00", None));
    let reversal = simulator().reverse_referenced(&FollowUpRequest {
        amount_minor: 2500,
        ..request.clone()
    });
    assert!(reversal.is_accepted());

    let other_code = if code == "000000" { "000001" } else { "000000" };
    let cases = [
        (
            FollowUpRequest {
                original_amount_minor: 2600,
                limit_minor: 2600,
                ..request.clone()
            },
            RequestError::UnknownReference,
            "25",
        ),
        (
            FollowUpRequest {
                original_authorisation_code: other_code,
                ..request.clone()
            },
            RequestError::UnknownReference,
            "25",
        ),
        (
            FollowUpRequest {
                currency_numeric: 978,
                ..request.clone()
            },
            RequestError::UnknownReference,
            "25",
        ),
        (
            FollowUpRequest {
                reference: "not-a-reference",
                ..request.clone()
            },
            RequestError::UnknownReference,
            "25",
        ),
        (
            FollowUpRequest {
                amount_minor: 1001,
                limit_minor: 1000,
                ..request.clone()
            },
            RequestError::AmountAboveOriginal,
            "13",
        ),
        (
            FollowUpRequest {
                limit_minor: 2501,
                ..request.clone()
            },
            RequestError::AmountAboveOriginal,
            "13",
        ),
        (
            FollowUpRequest {
                amount_minor: 0,
                ..request.clone()
            },
            RequestError::AmountZero,
            "13",
        ),
    ];
    for (bad, error, response_code) in cases {
        let refused = simulator().refund_referenced(&bad);
        assert_eq!(
            (refused.response_code, refused.error),
            (response_code, Some(error)),
            "{bad:?}"
        );
        assert!(
            !simulator().reverse_referenced(&bad).is_accepted(),
            "{bad:?}"
        );
    }
    // Declines carry no reference.
    let declined = simulator().authorize(&crate::Online::new("mc-cda", 2551).request());
    assert!(!declined.decision.is_approved());
    assert_eq!(declined.reference, None);
}
