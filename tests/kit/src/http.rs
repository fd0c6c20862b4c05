//! HTTP helpers: one client setup, JSON `GET`, admin `POST` with the test
//! token, Prometheus lines, a blocking call for synchronous tests, and a
//! stand-in server on loopback (a fake peer or tracker).

use std::time::Duration;

use serde_json::Value;

/// The admin token test nodes are started with (in their environment,
/// `CRAPCOIN_ADMIN_TOKEN`; see `process::NodeProc`).
pub const TOKEN: &str = "s3cret-token";

/// An HTTP client for tests: 30 s per request, no proxy.
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(30))
}

/// An HTTP client for tests with a `timeout` per request, no proxy.
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("an HTTP client builds")
}

/// The body of an answer as JSON, `Value::Null` when it is not JSON.
pub async fn json_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// GET `url` as JSON.
pub async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("answers");
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

/// POST JSON to an admin route with the test [`TOKEN`]; status and JSON
/// answer.
pub async fn admin(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("answers");
    json_body(response).await
}

/// `GET {base}/metrics` as text.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text")
}

/// The sum of the values of the Prometheus lines of `text` that start
/// with `prefix`.
pub fn metric_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The sum of the `/metrics` lines of the node at `base` that start with
/// `prefix`.
pub async fn metric(client: &reqwest::Client, base: &str, prefix: &str) -> u64 {
    metric_sum(&metrics_text(client, base).await, prefix)
}

/// A blocking HTTP call (for tests without a runtime): method, URL, JSON
/// body; status and JSON answer (`Value::Null` when not JSON). 90 s at
/// most.
pub fn blocking(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = client_with_timeout(Duration::from_secs(90));
        let mut request = client.request(method.parse().expect("method"), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("answers");
        json_body(response).await
    })
}

/// A listener on 127.0.0.1, port 0, and its `http://` URL: where a test's
/// stand-in for a peer or a tracker listens.
pub async fn loopback() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    (listener, url)
}

/// Serves `routes` on `listener` (in a task of the test's runtime) until
/// the returned sender is dropped or sent to.
pub fn serve<F>(listener: tokio::net::TcpListener, routes: F) -> tokio::sync::oneshot::Sender<()>
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    stop
}
