//! What the HTTP API takes and gives: request bodies, answers, and
//! [`ApiError`], the one error shape (`{"error": "...", "reason":
//! "snake_case"}` with a 4xx status, 5xx only for the node's own trouble).

use std::convert::Infallible;

use crapcoin_core::network::{BlockAck, PeerUrl, TxAck};
use crapcoin_core::node::{PeerError, TxError};
use crapcoin_core::{Address, ValidationError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// Largest body of `POST /transactions` (an honest one is about 400 bytes).
pub const MAX_TX_BODY: u64 = crapcoin_core::tx::MAX_TX_JSON_LEN as u64;
/// Largest body of `POST /peers`, `POST /transfer`, `POST /mine` and other
/// small admin requests.
pub const MAX_SMALL_BODY: u64 = 1024;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable snake_case reason.
    pub reason: &'static str,
    /// A human-readable message.
    pub error: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    reason: &'a str,
}

impl ApiError {
    /// An error with `status`, `reason` and message `error`.
    pub fn new(status: StatusCode, reason: &'static str, error: impl ToString) -> Self {
        Self {
            status,
            reason,
            error: error.to_string(),
        }
    }

    /// 400 with `reason`.
    pub fn bad_request(reason: &'static str, error: impl ToString) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, error)
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.error,
            reason: self.reason,
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let status = match e {
            ValidationError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.reason(), &e)
    }
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        let status = match &e {
            TxError::Invalid(ValidationError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            TxError::Invalid(_) => StatusCode::BAD_REQUEST,
            TxError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            TxError::ShuttingDown | TxError::CatchingUp => StatusCode::SERVICE_UNAVAILABLE,
            TxError::Dropped => StatusCode::CONFLICT,
            TxError::NotRecorded(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ if e.reason() == "mempool_full" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.reason(), &e)
    }
}

impl From<PeerError> for ApiError {
    fn from(e: PeerError) -> Self {
        let status = match &e {
            PeerError::Banned => StatusCode::FORBIDDEN,
            PeerError::Full => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.reason(), &e)
    }
}

/// Parses a JSON body; malformed JSON, wrong types, missing or unknown
/// fields are all `400 malformed`.
///
/// # Errors
///
/// [`ApiError`] with reason `malformed`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("malformed", e))
}

/// A 200 JSON answer.
pub fn json<T: Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
}

/// `POST /peers` and `POST /admin/peers`: a node announcing itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    /// Where the node is reached.
    pub url: PeerUrl,
}

/// `POST /transfer` (admin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Recipient.
    pub to: Address,
    /// Coins to move.
    pub amount: u64,
}

/// `POST /admin/auto` (admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRequest {
    /// `true` resumes auto mode, `false` pauses it.
    pub on: bool,
}

/// `POST /mine` (admin); the body is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineRequest {
    /// Blocks to mine one after the other (default 1, at most
    /// [`MAX_MINE_COUNT`]); the answer names the last.
    #[serde(default)]
    pub count: Option<u64>,
}

/// Most blocks one `POST /mine` mines.
pub const MAX_MINE_COUNT: u64 = 10_000;

/// `GET /blocks` query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlocksQuery {
    /// First height (default 0).
    pub from: Option<u64>,
    /// Most blocks (default and cap: the node's page limit).
    pub limit: Option<u64>,
}

/// Most transfers one `GET /transfers/acknowledged` page holds (and its
/// default).
pub const MAX_ACKED_LIMIT: u64 = crapcoin_core::network::MAX_ACKED_PAGE as u64;

/// `GET /transfers/acknowledged` query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckedQuery {
    /// Only transfers recorded after this sequence number (default 0:
    /// from the first).
    pub after: Option<u64>,
    /// Most transfers, 1..=[`MAX_ACKED_LIMIT`] (default: the cap).
    pub limit: Option<u64>,
}

/// One transfer a node acknowledged, as `GET /transfers/acknowledged`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedItem {
    /// Its place in the node's record (the page cursor).
    pub seq: u64,
    /// The transaction id.
    pub id: crapcoin_core::TxId,
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Amount.
    pub amount: u64,
    /// Fee.
    pub fee: u64,
    /// Sender's nonce.
    pub nonce: u64,
    /// When the node acknowledged it (its clock, ms since the epoch).
    pub acknowledged_ms: u64,
    /// Whether it waits in the node's mempool at the time of the answer
    /// (not yet on its best chain).
    pub pending: bool,
}

impl AckedItem {
    /// The listing of `t`, `pending` or not.
    pub fn new(t: &crapcoin_core::network::AckedTransfer, pending: bool) -> Self {
        Self {
            seq: t.seq,
            id: t.id,
            from: t.tx.from,
            to: t.tx.to,
            amount: t.tx.amount,
            fee: t.tx.fee,
            nonce: t.tx.nonce,
            acknowledged_ms: t.acknowledged_ms,
            pending,
        }
    }
}

/// `GET /transfers/acknowledged` answer: a page, oldest first, and the
/// cursor of the next one (`None` when this page was not full: nothing
/// more was recorded yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedPage {
    /// The transfers.
    pub transfers: Vec<AckedItem>,
    /// `after` for the next page.
    pub next: Option<u64>,
}

/// `POST /block` answer.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AckAnswer {
    /// `accepted`, `duplicate`, `orphan` or `ignored`.
    pub result: BlockAck,
}

/// `POST /transactions` answer to a peer's relay.
#[derive(Debug, Serialize, Deserialize)]
pub struct TxAckAnswer {
    /// `accepted`, `duplicate` or `ignored`.
    pub result: TxAck,
}

/// `GET /balance/{address}` answer.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceAnswer {
    /// The account.
    pub address: Address,
    /// Coins on the best chain.
    pub balance: u64,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

/// Turns warp's rejections (no route, wrong method, bad query, oversize or
/// unsized body) into [`ApiError`] answers.
///
/// # Errors
///
/// Never: every rejection becomes an answer.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if rejection.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e)
    } else if let Some(e) = rejection.find::<warp::reject::LengthRequired>() {
        ApiError::new(StatusCode::LENGTH_REQUIRED, "length_required", e)
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request("bad_query", e)
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request("bad_header", e)
    } else if let Some(e) = rejection.find::<warp::reject::MethodNotAllowed>() {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", e)
    } else if let Some(e) = rejection.find::<warp::reject::UnsupportedMediaType>() {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e,
        )
    } else {
        tracing::debug!(?rejection, "unhandled rejection");
        ApiError::bad_request("bad_request", "bad request")
    };
    Ok(error.into_response())
}
