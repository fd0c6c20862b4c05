//! The routes: path, method, body limit and extraction for each, then the
//! handler. Every POST has a body size limit (`413 too_large` past it);
//! `POST /mine`, whose body is optional, also takes a request without one
//! (no `Content-Length`, as `curl -X POST` sends it).

use std::convert::Infallible;
use std::sync::Arc;

use crapcoin_core::block::MAX_BLOCK_JSON_LEN;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::App;
use super::faults;
use super::handlers;
use super::models::{self, AckedQuery, BlocksQuery, MAX_SMALL_BODY, MAX_TX_BODY};
use super::server::{Caller, GossipOffer};
use crate::client::PEER_HEADER;

fn with_app(app: Arc<App>) -> impl Filter<Extract = (Arc<App>,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

fn body(limit: u64) -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(limit).and(warp::body::bytes())
}

/// The body of a route whose body is optional: a request with neither
/// `Content-Length` nor `Transfer-Encoding` has no body (HTTP/1.1), so it
/// gets an empty one instead of `411 length_required`; a body that is
/// there is size-capped as [`body`] does.
fn optional_body(
    limit: u64,
) -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    let none = warp::header::optional::<String>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(
            |length: Option<String>, encoding: Option<String>| async move {
                match (length, encoding) {
                    (None, None) => Ok(bytes::Bytes::new()),
                    // Not found: the `or` below answers with the capped
                    // body's outcome, which is more specific.
                    _ => Err(warp::reject::not_found()),
                }
            },
        );
    none.or(body(limit)).unify()
}

fn auth() -> impl Filter<Extract = (Option<String>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization")
}

/// Every route of the API, with rejections recovered into JSON errors.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let status = warp::path!("status")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::status)
        .boxed();
    let blockchain = warp::path!("blockchain")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::blockchain)
        .boxed();
    let blocks = warp::path!("blocks")
        .and(warp::get())
        .and(warp::query::<BlocksQuery>())
        .and(with_app(app.clone()))
        .then(handlers::blocks)
        .boxed();
    let block = warp::path!("block" / String)
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::block)
        .boxed();
    let post_block = warp::path!("block")
        .and(warp::post())
        .and(warp::header::optional::<String>(PEER_HEADER))
        .and(warp::ext::optional::<Caller>())
        .and(body(MAX_BLOCK_JSON_LEN as u64))
        .and(with_app(app.clone()))
        .then(handlers::post_block)
        .boxed();
    let gossip = warp::path!("gossip")
        .and(warp::post())
        .and(warp::ext::optional::<GossipOffer>())
        .and(warp::header::optional::<String>(PEER_HEADER))
        .and(warp::ext::optional::<Caller>())
        .then(handlers::gossip)
        .boxed();
    let peers = warp::path!("peers")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::peers)
        .boxed();
    let announce = warp::path!("peers")
        .and(warp::post())
        .and(body(MAX_SMALL_BODY))
        .and(with_app(app.clone()))
        .then(handlers::announce)
        .boxed();
    let transactions = warp::path!("transactions")
        .and(warp::post())
        .and(warp::header::optional::<String>(PEER_HEADER))
        .and(warp::ext::optional::<Caller>())
        .and(body(MAX_TX_BODY))
        .and(with_app(app.clone()))
        .then(handlers::submit_transaction)
        .boxed();
    let acknowledged = warp::path!("transfers" / "acknowledged")
        .and(warp::get())
        .and(warp::query::<AckedQuery>())
        .and(with_app(app.clone()))
        .then(handlers::acknowledged)
        .boxed();
    let balance = warp::path!("balance" / String)
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::balance)
        .boxed();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(handlers::metrics)
        .boxed();
    let transfer = warp::path!("transfer")
        .and(warp::post())
        .and(auth())
        .and(body(MAX_SMALL_BODY))
        .and(with_app(app.clone()))
        .then(handlers::transfer)
        .boxed();
    let mine = warp::path!("mine")
        .and(warp::post())
        .and(auth())
        .and(optional_body(MAX_SMALL_BODY))
        .and(with_app(app.clone()))
        .then(handlers::mine)
        .boxed();
    let add_peer = warp::path!("admin" / "peers")
        .and(warp::post())
        .and(auth())
        .and(body(MAX_SMALL_BODY))
        .and(with_app(app.clone()))
        .then(handlers::add_peer)
        .boxed();
    let auto = warp::path!("admin" / "auto")
        .and(warp::post())
        .and(auth())
        .and(body(MAX_SMALL_BODY))
        .and(with_app(app.clone()))
        .then(handlers::set_auto)
        .boxed();
    // `/admin/faults` (the node's network faults): POST, GET, DELETE.
    let faults = {
        let post = warp::path!("admin" / "faults")
            .and(warp::post())
            .and(auth())
            .and(body(faults::MAX_FAULTS_BODY))
            .and(with_app(app.clone()))
            .then(faults::post);
        let get = warp::path!("admin" / "faults")
            .and(warp::get())
            .and(auth())
            .and(with_app(app.clone()))
            .then(faults::get);
        let delete = warp::path!("admin" / "faults")
            .and(warp::delete())
            .and(auth())
            .and(with_app(app.clone()))
            .then(faults::delete);
        post.or(get).unify().or(delete).unify().boxed()
    };
    status
        .or(faults)
        .unify()
        .or(blockchain)
        .unify()
        .or(blocks)
        .unify()
        .or(block)
        .unify()
        .or(post_block)
        .unify()
        .or(gossip)
        .unify()
        .or(peers)
        .unify()
        .or(announce)
        .unify()
        .or(transactions)
        .unify()
        .or(acknowledged)
        .unify()
        .or(balance)
        .unify()
        .or(metrics)
        .unify()
        .or(transfer)
        .unify()
        .or(mine)
        .unify()
        .or(add_peer)
        .unify()
        .or(auto)
        .unify()
        .recover(models::recover)
        .unify()
        .map(Reply::into_response)
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crapcoin_core::{Node, Params};

    use super::{MAX_SMALL_BODY, routes};
    use crate::http::App;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn mine_takes_a_request_without_a_body() {
        let handle = Node::builder(Params::with_difficulty(4))
            .launch()
            .await
            .expect("launches");
        let app = App::new(
            handle.clone(),
            Some("secret".to_owned()),
            Arc::new(Metrics::default()),
        );
        let routes = routes(app);
        // What `curl -X POST -H 'Authorization: Bearer secret' URL/mine`
        // sends: no body, no Content-Length.
        let request = warp::test::request()
            .method("POST")
            .path("/mine")
            .header("authorization", "Bearer secret");
        let response = request.reply(&routes).await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
        assert_eq!(handle.height(), 1);
        // A body that is there is still read and still capped.
        let response = warp::test::request()
            .method("POST")
            .path("/mine")
            .header("authorization", "Bearer secret")
            .body(r#"{"count": 2}"#)
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
        assert_eq!(handle.height(), 3);
        let response = warp::test::request()
            .method("POST")
            .path("/mine")
            .header("authorization", "Bearer secret")
            .body(vec![
                b' ';
                usize::try_from(MAX_SMALL_BODY).expect("small") + 1
            ])
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 413, "{:?}", response.body());
        // Routes that need a body still ask for its length.
        let response = warp::test::request()
            .method("POST")
            .path("/transfer")
            .header("authorization", "Bearer secret")
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 411, "{:?}", response.body());
        handle.shutdown().await;
    }
}
