//! Talking to Sauron: reporting what the Boss (or a person) did through
//! `POST /api/boss`, and the faults it set and ended through
//! `POST /api/faults` (docs/sauron.md).

use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::model::BossAction;

use crate::client::{self, boss_report};
use crate::fleet::{Fleet, View};

/// Reports `action` on `view`'s node to Sauron, if it runs. Fire and
/// forget: a slow or absent Sauron never holds up the Boss (the report is
/// a task of the fleet's tracker, bounded by the client's timeout);
/// failures are logged.
pub fn report(fleet: &Fleet, action: BossAction, view: &View) {
    let Some(sauron) = fleet.sauron_url() else {
        return;
    };
    let report = boss_report(action, &view.name, view.url.as_deref());
    let client = fleet.client().clone();
    fleet.tasks().spawn(async move {
        match client.report_boss(&sauron, &report).await {
            Ok(()) => {}
            Err(client::Error::Refused(status)) => {
                tracing::warn!(%status, "Sauron refused a boss report");
            }
            Err(e) => tracing::warn!(error = %e, "reporting to Sauron"),
        }
    });
}

/// Reports a fault's start (or, under the same id, its end) to Sauron, if
/// it runs; fire and forget, as [`report`].
pub fn report_fault(fleet: &Fleet, record: FaultRecord) {
    let Some(sauron) = fleet.sauron_url() else {
        return;
    };
    let client = fleet.client().clone();
    fleet.tasks().spawn(async move {
        match client.report_fault(&sauron, &record).await {
            Ok(()) => {}
            Err(client::Error::Refused(status)) => {
                tracing::warn!(%status, id = record.id, "Sauron refused a fault report");
            }
            Err(e) => tracing::warn!(error = %e, "reporting a fault to Sauron"),
        }
    });
}
