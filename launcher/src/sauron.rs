//! Talking to Sauron: reporting what the Boss (or a person) did through
//! `POST /api/boss` (docs/sauron.md).

use std::time::Duration;

use serde_json::json;

use crate::fleet::{Fleet, View};

/// Reports `action` (`fired`, `rehired`, `hired`, `paused`, `resumed`) on
/// `view`'s node to Sauron, if it runs. Fire and forget: a slow or absent
/// Sauron never holds up the Boss; failures are logged.
pub fn report(fleet: &Fleet, action: &'static str, view: &View) {
    let Some(sauron) = fleet.sauron_url() else {
        return;
    };
    let body = json!({
        "action": action,
        "node": view.name,
        "url": view.url,
        "at_ms": crapcoin_core::node::now_ms(),
    });
    tokio::spawn(async move {
        let client = crate::watch::client();
        let sent = client
            .post(format!("{sauron}/api/boss"))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(3))
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "Sauron refused a boss report"),
            Err(e) => tracing::warn!(error = %e, "reporting to Sauron"),
        }
    });
}
