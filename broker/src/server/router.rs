//! Start-up step: which gRPC services this process answers, each behind the access gate, and
//! the health and reflection services beside them.

use std::sync::Arc;

use deconfliction_proto::v1::admin_server::AdminServer;
use deconfliction_proto::v1::broker_server::BrokerServer;
use deconfliction_proto::v1::oversight_server::OversightServer;
use deconfliction_proto::v1::token_service_server::TokenServiceServer;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use crate::config::BrokerConfig;
use crate::core::Core;
use crate::drills::DrillHost;
use crate::grpc::admin::AdminService;
use crate::grpc::broker::{BrokerService, FederationParams};
use crate::grpc::oversight::OversightService;
use crate::grpc::token_service::TokenServiceImpl;
use crate::ops::registry_mirror::MirrorHealth;
use crate::secrets::pepper::Pepper;
use crate::tokens::Quota;
use crate::transport::access::Gate;

use super::StartError;
use super::keys::TokenKeys;

/// Everything [`routes`] needs from the earlier steps.
pub(super) struct RouteParts<'a> {
    pub config: &'a BrokerConfig,
    pub core: &'a Arc<Core>,
    pub gate: &'a Arc<Gate>,
    /// Present when this process is a broker (not a stand-alone token service).
    pub pepper: Option<Pepper>,
    pub keys: &'a TokenKeys,
    pub shutdown: &'a watch::Receiver<bool>,
    /// The audit checkpoints' MAC key (a broker has one; a token service has no ledger).
    pub audit_key: Option<[u8; 32]>,
    /// A stand-alone token service's registry mirror.
    pub registry: Option<Arc<MirrorHealth>>,
    /// The drills this broker serves beside itself, if it does.
    pub drills: Option<Arc<DrillHost>>,
}

/// The services, marked serving in `health` as they are added.
pub(super) async fn routes(
    parts: RouteParts<'_>,
    health: &mut HealthReporter,
) -> Result<Routes, StartError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(deconfliction_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Config(format!("reflection: {e}")))?;
    let mut routes = Routes::builder();
    routes.add_service(reflection);
    let max_message = parts.config.policy.max_message_bytes;
    if let Some(pepper) = parts.pepper {
        let federation = FederationParams {
            h3_resolution: parts.config.federation.h3_resolution,
            h3_disk_radius: parts.config.federation.h3_disk_radius,
            token_service_public_key: parts.keys.public_key.clone(),
            token_service_key_epoch: parts.keys.epoch,
            max_message_bytes: max_message,
            previous_key: parts.keys.previous.clone(),
            joint_shares: parts
                .keys
                .joint
                .as_ref()
                .map(|j| j.shares.clone())
                .unwrap_or_default(),
            joint_public_key: parts.keys.joint.as_ref().map(|j| j.public_key),
            drill: parts.config.drill.clone(),
        };
        let broker = BrokerService::new(
            parts.core.clone(),
            pepper,
            parts.gate.clone(),
            federation,
            parts.shutdown.clone(),
            parts.config.policy.max_alert_streams_per_agency,
        );
        routes
            .add_service(OversightServer::new(OversightService::new(
                parts.gate.clone(),
                parts.core.clone(),
                parts.audit_key.unwrap_or_default(),
                replica_name(parts.config),
                parts.keys.current.as_ref().map_or(0, |k| k.epoch()),
            )))
            .add_service(AdminServer::new(AdminService::new(
                parts.core.clone(),
                parts.gate.clone(),
                parts.config.server.backup_root.clone(),
                parts.drills,
            )))
            .add_service(
                BrokerServer::new(broker)
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message),
            );
        health.set_serving::<BrokerServer<BrokerService>>().await;
    }
    if let Some(key) = &parts.keys.current {
        let tokens = TokenServiceImpl::new(
            key.clone(),
            Quota {
                per_minute: parts.config.token_service.quota_per_minute,
                per_day: parts.config.token_service.quota_per_day,
            },
            parts.core.metrics.clone(),
            parts.gate.clone(),
        )
        .with_previous(parts.keys.previous.clone())
        .with_registry_mirror(parts.registry.clone());
        routes.add_service(
            TokenServiceServer::new(tokens)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
        health
            .set_serving::<TokenServiceServer<TokenServiceImpl>>()
            .await;
    }
    Ok(routes.routes())
}

/// How the health panel names this process: the host's name and the gRPC port's address.
fn replica_name(config: &BrokerConfig) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "broker".to_owned());
    format!("{host} ({})", config.server.listen)
}
