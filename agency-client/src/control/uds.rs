//! A gRPC channel over agencyd's Unix domain socket.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::pb::agency_control_client::AgencyControlClient;

/// agencyd could not be reached on its socket.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach agencyd at {path}: {reason}. Is agencyd running? Give its socket with \
     --socket or DECONFLICT_SOCKET"
)]
pub struct ConnectError {
    /// The socket tried.
    pub path: String,
    /// Why it failed.
    pub reason: String,
}

/// Connects to agencyd's control socket (eagerly, so an absent daemon is known at once).
pub async fn connect(path: &Path) -> Result<AgencyControlClient<Channel>, ConnectError> {
    let fail = |reason: String| ConnectError {
        path: path.display().to_string(),
        reason,
    };
    // The URI is required by the HTTP/2 layer but never resolved: the connector below opens
    // the socket.
    let endpoint = Endpoint::from_static("http://agencyd.local");
    let channel = endpoint
        .connect_with_connector(UdsConnector {
            path: path.to_path_buf(),
        })
        .await
        .map_err(|e| fail(source_text(&e)))?;
    Ok(AgencyControlClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

fn source_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// Opens the socket for each connection tonic asks for.
#[derive(Clone)]
struct UdsConnector {
    path: PathBuf,
}

impl tower::Service<Uri> for UdsConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = self.path.clone();
        Box::pin(async move { Ok(TokioIo::new(UnixStream::connect(path).await?)) })
    }
}
