//! Gossip frames served without the router: a frame of a gossip stream
//! ([`crate::gossip`]) stands for `POST /block` or `POST /transactions`,
//! and [`Frames`] hands it to that route's handler directly, past warp's
//! filters (about a quarter of a hop's time in the node, BENCHMARKS.md,
//! issue 13). Everything else goes to the routes.
//!
//! Nothing a route does for these requests is skipped: the frame's length
//! is already capped at a block's largest JSON (the block route's limit)
//! and a transfer's is capped here at the transaction route's
//! (`413 too_large`), the handlers are the routes' own, and the layer
//! around [`Frames`] (the AllSeeingEye) counts and reports the request as
//! it would the route's.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tower_service::Service;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::App;
use super::handlers;
use super::models::{ApiError, MAX_TX_BODY};
use super::server::{Caller, GossipFrame};
use crate::gossip::{Kind, PEER_HEADER};

/// The node's routes with gossip frames taken out before them (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct Frames<S> {
    app: Arc<App>,
    routes: S,
}

impl<S> Frames<S> {
    /// `routes` for every request but gossip frames, which go to `app`'s
    /// handlers.
    pub fn new(app: Arc<App>, routes: S) -> Self {
        Self { app, routes }
    }
}

impl<S, B> Service<http::Request<B>> for Frames<S>
where
    S: Service<http::Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(GossipFrame(kind)) = req.extensions().get::<GossipFrame>().copied() {
            return Box::pin(frame(self.app.clone(), kind, req));
        }
        // The routes that were polled ready serve this request; a clone
        // takes their place for the next one (tower's usual swap).
        let clone = self.routes.clone();
        let mut routes = std::mem::replace(&mut self.routes, clone);
        Box::pin(async move { routes.call(req).await })
    }
}

/// Serves one frame with its route's handler.
async fn frame<B>(app: Arc<App>, kind: Kind, req: http::Request<B>) -> Result<Response, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let peer = req
        .headers()
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let caller = req.extensions().get::<Caller>().copied();
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return Ok(ApiError::new(StatusCode::BAD_REQUEST, "malformed", e).into_response());
        }
    };
    Ok(match kind {
        Kind::Block => handlers::post_block(peer, caller, body, app).await,
        Kind::Tx if body.len() as u64 > MAX_TX_BODY => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "a transaction of {} bytes (at most {MAX_TX_BODY})",
                body.len()
            ),
        )
        .into_response(),
        Kind::Tx => handlers::submit_transaction(peer, caller, body, app).await,
    })
}
