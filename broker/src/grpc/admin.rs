//! The `Admin` service: enrol, suspend and reinstate agencies. A suspended agency's calls are
//! refused at once (the gate reads the registry on every call).

use std::sync::Arc;

use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_server::Admin;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::drills::DrillHost;
use crate::error::BrokerError;
use crate::grpc::validate;
use crate::ledger::records::AgencyEntry;
use crate::transport::access::{Gate, Need};

#[derive(Debug)]
pub struct AdminService {
    core: Arc<Core>,
    gate: Arc<Gate>,
    /// The only folder backups are written into (`server.backup_root`).
    backup_root: Option<std::path::PathBuf>,
    /// The drills this broker serves beside itself, if it does.
    drills: Option<Arc<DrillHost>>,
}

impl AdminService {
    pub fn new(
        core: Arc<Core>,
        gate: Arc<Gate>,
        backup_root: Option<std::path::PathBuf>,
        drills: Option<Arc<DrillHost>>,
    ) -> Self {
        Self {
            core,
            gate,
            backup_root,
            drills,
        }
    }
}

fn restrict_to_owner(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(path = %dir.display(), error = %e, "backup folder left with its mode");
        }
    }
}

fn record(id: &str, e: &AgencyEntry) -> v1::AgencyRecord {
    v1::AgencyRecord {
        agency_id: id.to_owned(),
        role: e.role,
        display_name: e.display_name.clone(),
        suspended: e.suspended,
        suspension_reason: e.suspension_reason.clone(),
        updated_unix: e.updated,
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn enrol_agency(
        &self,
        req: Request<v1::EnrolAgencyRequest>,
    ) -> Result<Response<v1::AgencyRecord>, Status> {
        let (admin, _) = self.gate.admit(&req, Need::Admin)?;
        let r = req.into_inner();
        let target = validate::agency_id(&r.agency_id)?;
        validate::enrolment(r.role, &r.display_name)?;
        let (entry, notes) =
            self.core
                .ledger
                .enrol(&admin, &target, r.role, &r.display_name, Core::now())?;
        self.core.durable(notes).await?;
        tracing::info!(admin = %admin, agency = %target, role = r.role, "agency enrolled");
        Ok(Response::new(record(target.as_str(), &entry)))
    }

    async fn suspend_agency(
        &self,
        req: Request<v1::SuspendAgencyRequest>,
    ) -> Result<Response<v1::AgencyRecord>, Status> {
        let (admin, _) = self.gate.admit(&req, Need::Admin)?;
        let r = req.into_inner();
        let target = validate::agency_id(&r.agency_id)?;
        validate::suspension_reason(&r.reason)?;
        let (entry, closed, notes) = self.core.ledger.set_suspended(
            &admin,
            &target,
            true,
            &r.reason,
            r.close_operations,
            Core::now(),
        )?;
        self.core.durable(notes).await?;
        tracing::warn!(admin = %admin, agency = %target, closed, "agency suspended");
        Ok(Response::new(record(target.as_str(), &entry)))
    }

    async fn reinstate_agency(
        &self,
        req: Request<v1::ReinstateAgencyRequest>,
    ) -> Result<Response<v1::AgencyRecord>, Status> {
        let (admin, _) = self.gate.admit(&req, Need::Admin)?;
        let target = validate::agency_id(&req.get_ref().agency_id)?;
        let (entry, _, notes) =
            self.core
                .ledger
                .set_suspended(&admin, &target, false, "", false, Core::now())?;
        self.core.durable(notes).await?;
        tracing::info!(admin = %admin, agency = %target, "agency reinstated");
        Ok(Response::new(record(target.as_str(), &entry)))
    }

    async fn backup(
        &self,
        req: Request<v1::BackupRequest>,
    ) -> Result<Response<v1::BackupResponse>, Status> {
        let (admin, _) = self.gate.admit(&req, Need::Admin)?;
        let dir = validate::backup_dir(&req.get_ref().directory, self.backup_root.as_deref())?;
        let ledger = self.core.ledger.clone();
        let target = dir.clone();
        let records = tokio::task::spawn_blocking(move || ledger.backup(&target))
            .await
            .map_err(|_| BrokerError::TaskFailed("backup task"))??;
        // A backup holds what the store holds: its owner only.
        restrict_to_owner(&dir);
        let bytes = crate::store::bytes_under(&dir);
        self.core.ledger.audit_only(
            vec![
                crate::ledger::audit::AuditEvent::new(admin.as_str(), "backup")
                    .count("records", records)
                    .count("bytes", bytes),
            ],
            Core::now(),
        )?;
        self.core
            .durable(crate::ledger::Notifications::default())
            .await?;
        tracing::info!(admin = %admin, records, bytes, "backup written");
        Ok(Response::new(v1::BackupResponse {
            directory: dir.display().to_string(),
            records,
            bytes,
        }))
    }

    async fn start_drill(
        &self,
        req: Request<v1::StartDrillRequest>,
    ) -> Result<Response<v1::DrillStatus>, Status> {
        super::drills::start(&self.gate, self.drills.as_deref(), req).await
    }

    async fn halt_drill(
        &self,
        req: Request<v1::HaltDrillRequest>,
    ) -> Result<Response<v1::DrillStatus>, Status> {
        super::drills::halt(&self.gate, self.drills.as_deref(), req).await
    }

    async fn end_drill(
        &self,
        req: Request<v1::EndDrillRequest>,
    ) -> Result<Response<v1::EndDrillResponse>, Status> {
        super::drills::end(&self.gate, self.drills.as_deref(), req).await
    }

    async fn list_drills(
        &self,
        req: Request<v1::ListDrillsRequest>,
    ) -> Result<Response<v1::ListDrillsResponse>, Status> {
        super::drills::list(&self.gate, self.drills.as_deref(), req).await
    }

    async fn list_agencies(
        &self,
        req: Request<v1::ListAgenciesRequest>,
    ) -> Result<Response<v1::ListAgenciesResponse>, Status> {
        self.gate.admit(&req, Need::RegistryRead)?;
        let r = req.get_ref();
        let size = validate::page_size(r.page_size)?;
        let all = self.core.ledger.list_agencies()?;
        let (page, next) =
            crate::grpc::paging::page(all, |(id, _)| id.clone(), &r.page_token, size);
        Ok(Response::new(v1::ListAgenciesResponse {
            agencies: page.iter().map(|(id, e)| record(id, e)).collect(),
            next_page_token: next,
        }))
    }
}
