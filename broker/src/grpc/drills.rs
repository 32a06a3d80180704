//! The `Admin` service's drill calls: start, halt, end and list the exercises this broker
//! serves beside itself (see `crate::drills`).

use deconfliction_proto::v1;
use tonic::{Request, Response, Status};

use crate::drills::{DrillHost, DrillView};
use crate::error::BrokerError;
use crate::grpc::validate;
use crate::transport::access::{Gate, Need};

fn host(drills: Option<&DrillHost>) -> Result<&DrillHost, BrokerError> {
    drills.ok_or_else(|| {
        BrokerError::DrillsNotServed(
            "this broker serves no drills (a drill itself, a joint broker, or [drills] enabled \
             = false)"
                .into(),
        )
    })
}

pub(crate) fn status(v: DrillView) -> v1::DrillStatus {
    let r = v.record;
    v1::DrillStatus {
        info: Some(v1::DrillInfo {
            drill_id: r.id,
            name: r.name,
            starts_unix: r.starts,
            ends_unix: r.purged.map_or(r.ends, |p| p.at.min(r.ends)),
            halted: r.halted.is_some(),
            halt_reason: r.halted.unwrap_or_default(),
        }),
        port: if v.running { u32::from(r.port) } else { 0 },
        token_service_public_key: v.public_key,
        token_service_key_epoch: v.key_epoch,
    }
}

pub(crate) async fn start(
    gate: &Gate,
    drills: Option<&DrillHost>,
    req: Request<v1::StartDrillRequest>,
) -> Result<Response<v1::DrillStatus>, Status> {
    let (admin, _) = gate.admit(&req, Need::Admin)?;
    let drills = host(drills)?;
    let wanted = validate::drill_start(req.get_ref())?;
    let view = drills.start(&admin, wanted).await?;
    Ok(Response::new(status(view)))
}

pub(crate) async fn halt(
    gate: &Gate,
    drills: Option<&DrillHost>,
    req: Request<v1::HaltDrillRequest>,
) -> Result<Response<v1::DrillStatus>, Status> {
    let (admin, _) = gate.admit(&req, Need::Admin)?;
    let drills = host(drills)?;
    let r = req.get_ref();
    let id = validate::drill_id(&r.drill_id)?;
    validate::halt_reason(&r.reason)?;
    let view = drills.halt(&admin, &id, &r.reason).await?;
    Ok(Response::new(status(view)))
}

pub(crate) async fn end(
    gate: &Gate,
    drills: Option<&DrillHost>,
    req: Request<v1::EndDrillRequest>,
) -> Result<Response<v1::EndDrillResponse>, Status> {
    let (admin, _) = gate.admit(&req, Need::Admin)?;
    let drills = host(drills)?;
    let id = validate::drill_id(&req.get_ref().drill_id)?;
    let records_purged = drills.end(admin.as_str(), &id).await?;
    Ok(Response::new(v1::EndDrillResponse {
        drill_id: id,
        records_purged,
    }))
}

pub(crate) async fn list(
    gate: &Gate,
    drills: Option<&DrillHost>,
    req: Request<v1::ListDrillsRequest>,
) -> Result<Response<v1::ListDrillsResponse>, Status> {
    gate.admit(&req, Need::Admin)?;
    let drills = host(drills)?;
    let list = drills.list().await?;
    Ok(Response::new(v1::ListDrillsResponse {
        drills: list.into_iter().map(status).collect(),
    }))
}
