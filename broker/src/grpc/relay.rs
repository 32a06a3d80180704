//! The relay calls of the `Broker` service (messages, contact cards, resolution). Message
//! texts and cards are never logged: only agency ids, match ids and lengths.

use deconfliction_proto::v1;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::grpc::validate::{self, match_id};
use crate::identity::AgencyId;
use crate::ledger::StateChange;
use crate::transport::access::{Gate, Need};

pub(crate) async fn send_message(
    core: &Core,
    gate: &Gate,
    req: Request<v1::SendMessageRequest>,
) -> Result<Response<v1::SendMessageResponse>, Status> {
    let (agency, _) = gate.admit(&req, Need::Agency)?;
    core.ledger.refuse_if_halted()?;
    let req = req.into_inner();
    let id = match_id(&req.match_id)?;
    validate::message_text(&req.text)?;
    let (view, notes) = core
        .ledger
        .send_message(&agency, &id, &req.text, Core::now())?;
    core.durable(notes).await?;
    tracing::info!(agency = %agency, r#match = %id, chars = req.text.chars().count(), "relay message");
    Ok(Response::new(v1::SendMessageResponse {
        r#match: Some(view.into()),
    }))
}

pub(crate) async fn disclose(
    core: &Core,
    gate: &Gate,
    req: Request<v1::DiscloseRequest>,
) -> Result<Response<v1::MatchView>, Status> {
    let (agency, _) = gate.admit(&req, Need::Agency)?;
    core.ledger.refuse_if_halted()?;
    let req = req.into_inner();
    let id = match_id(&req.match_id)?;
    let card = validate::card(req.card.as_ref())?;
    let (view, notes) = core.ledger.disclose(&agency, &id, card, Core::now())?;
    core.durable(notes).await?;
    tracing::info!(agency = %agency, r#match = %id, exchanged = view.cards_exchanged, "disclosure");
    Ok(Response::new(view.into()))
}

pub(crate) async fn withdraw(
    core: &Core,
    gate: &Gate,
    req: Request<v1::WithdrawDisclosureRequest>,
) -> Result<Response<v1::MatchView>, Status> {
    let (agency, _) = gate.admit(&req, Need::Agency)?;
    let id = match_id(&req.get_ref().match_id)?;
    let (view, notes) = core.ledger.withdraw_disclosure(&agency, &id, Core::now())?;
    core.durable(notes).await?;
    tracing::info!(agency = %agency, r#match = %id, "disclosure withdrawn");
    Ok(Response::new(view.into()))
}

/// Resolve or reopen, for a caller the handler has already admitted.
pub(crate) async fn set_state(
    core: &Core,
    agency: &AgencyId,
    match_text: &str,
    change: StateChange,
) -> Result<Response<v1::MatchView>, Status> {
    let id = match_id(match_text)?;
    let resolve = matches!(change, StateChange::Resolve { .. });
    let (view, notes) = core
        .ledger
        .set_match_state(agency, &id, change, Core::now())?;
    core.durable(notes).await?;
    tracing::info!(agency = %agency, r#match = %id, resolve, "match state changed");
    Ok(Response::new(view.into()))
}

pub(crate) async fn get_match(
    core: &Core,
    gate: &Gate,
    req: Request<v1::GetMatchRequest>,
) -> Result<Response<v1::MatchView>, Status> {
    let (agency, _) = gate.admit(&req, Need::Agency)?;
    let id = match_id(&req.get_ref().match_id)?;
    Ok(Response::new(core.ledger.get_match(&agency, &id)?.into()))
}

/// An officer acknowledged an alert about the match (for the watch centre's view).
pub(crate) async fn acknowledge(
    core: &Core,
    gate: &Gate,
    req: Request<v1::AcknowledgeMatchRequest>,
) -> Result<Response<v1::AcknowledgeMatchResponse>, Status> {
    let (agency, _) = gate.admit(&req, Need::Agency)?;
    let id = match_id(&req.get_ref().match_id)?;
    let notes = core.ledger.acknowledge_match(&agency, &id, Core::now())?;
    core.durable(notes).await?;
    tracing::debug!(agency = %agency, r#match = %id, "match acknowledged");
    Ok(Response::new(v1::AcknowledgeMatchResponse {}))
}
