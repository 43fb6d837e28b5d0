//! `refund` and `history`: the device's own sales, through the signed device endpoints (a
//! device sees and refunds only its own transactions).

use std::path::Path;

use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use crate::CliError;
use crate::client::Client;
use crate::client::wire::TransactionView;
use crate::commands::common::{block_on, client_error, open_client};
use crate::commands::output::{Reply, render};
use crate::error::EXIT_REFUSED;
use crate::money;

/// Options of `refund`.
#[derive(Debug, Args)]
pub struct RefundArgs {
    /// The sale to refund (its id, as `pay` and `history` show it).
    pub transaction_id: String,
    /// Amount in major units, e.g. 5.00 [default: everything not refunded yet].
    #[arg(long)]
    pub amount: Option<String>,
    /// Why (kept in the record).
    #[arg(long)]
    pub reason: Option<String>,
    /// Idempotency key: a retry with the same key returns the first answer [default: fresh].
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How many history pages `refund` reads to find the sale (its currency and amount).
const REFUND_LOOKUP_PAGES: usize = 20;

async fn find_own_sale(client: &Client, id: Uuid) -> Result<Option<TransactionView>, CliError> {
    let mut cursor: Option<String> = None;
    for _ in 0..REFUND_LOOKUP_PAGES {
        let page = client
            .history(Some(200), cursor.as_deref())
            .await
            .map_err(|e| client_error(&e))?;
        if let Some(found) = page.items.into_iter().find(|tx| tx.id == id) {
            return Ok(Some(found));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Runs `refund`.
///
/// # Errors
/// Bad input (2: id, amount, idempotency key), store (7), server (3, 4:
/// `transaction_not_found`, `refund_exceeds_captured`, …; 5 for device state).
pub fn run_refund(store_path: &Path, args: RefundArgs) -> Result<Reply, CliError> {
    let id: Uuid = args.transaction_id.trim().parse().map_err(|_| {
        CliError::bad_input(
            "invalid_transaction_id",
            format!("{:?} is not a transaction id (UUID)", args.transaction_id),
        )
    })?;
    if let Some(key) = &args.idempotency_key
        && !((1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(CliError::bad_input(
            "invalid_idempotency_key",
            "--idempotency-key is 1 to 128 visible ASCII characters",
        ));
    }
    let client = open_client(store_path)?;
    let refunded = block_on(async {
        // The device endpoint takes minor units; the sale says which currency they are in.
        let sale = find_own_sale(&client, id).await?.ok_or_else(|| {
            CliError::new(
                "transaction_not_found",
                "no sale with this id among this terminal's transactions",
                EXIT_REFUSED,
            )
        })?;
        let currency = money::currency(&sale.currency)?;
        let remaining = u64::try_from(sale.amount_minor - sale.refunded_minor).unwrap_or(0);
        let amount_minor = match &args.amount {
            Some(text) => money::parse_amount(text, currency.exponent, "refund amount")?,
            None => remaining,
        };
        if amount_minor == 0 {
            return Err(CliError::bad_input(
                "invalid_amount",
                "the refund amount must be above zero (nothing left to refund?)",
            ));
        }
        let key = args
            .idempotency_key
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        client
            .refund(id, amount_minor, args.reason.as_deref(), &key)
            .await
            .map_err(|e| client_error(&e))
    })??;
    render(&refunded, args.json, |tx| {
        format!(
            "refunded: transaction {} now {} ({} of {} {} refunded)",
            tx.id,
            tx.state,
            amount_text(tx.refunded_minor, &tx.currency),
            amount_text(tx.amount_minor, &tx.currency),
            tx.currency
        )
    })
    .map(Reply::ok)
}

fn amount_text(minor: i64, currency: &str) -> String {
    let exponent = money::currency(currency).map_or(2, |c| c.exponent);
    money::format_amount(u64::try_from(minor).unwrap_or(0), exponent)
}

/// Options of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Transactions per page (1 to 200).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// The `next_cursor` of a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct HistoryView {
    items: Vec<TransactionView>,
    next_cursor: Option<String>,
}

/// Runs `history`.
///
/// # Errors
/// Bad limit (2), store (7), server (3, 4, 5).
pub fn run_history(store_path: &Path, args: &HistoryArgs) -> Result<Reply, CliError> {
    if !(1..=200).contains(&args.limit) {
        return Err(CliError::bad_input(
            "invalid_limit",
            "--limit must be 1 to 200",
        ));
    }
    let client = open_client(store_path)?;
    let page = block_on(client.history(Some(args.limit), args.cursor.as_deref()))?
        .map_err(|e| client_error(&e))?;
    let view = HistoryView {
        items: page.items,
        next_cursor: page.next_cursor,
    };
    render(&view, args.json, |view| {
        if view.items.is_empty() {
            return "no transactions".to_owned();
        }
        let mut out = String::new();
        for tx in &view.items {
            out.push_str(&format!(
                "{}  {}  {:>10} {}  {:<9} {} {}  refunded {}\n",
                tx.created_at.format("%Y-%m-%d %H:%M:%S"),
                tx.id,
                amount_text(tx.amount_minor, &tx.currency),
                tx.currency,
                tx.state,
                tx.scheme,
                tx.pan_masked,
                amount_text(tx.refunded_minor, &tx.currency),
            ));
        }
        if let Some(cursor) = &view.next_cursor {
            out.push_str(&format!("more: --cursor {cursor}\n"));
        }
        out
    })
    .map(Reply::ok)
}
