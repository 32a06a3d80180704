//! tonic answers an oversized request with OUT_OF_RANGE; gRPC's convention (and our
//! contract) is RESOURCE_EXHAUSTED. Our handlers never return OUT_OF_RANGE, so this layer
//! rewrites that code on trailers-only responses, which is how decode errors are sent.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

#[derive(Debug, Clone, Copy)]
pub struct ResourceExhaustedOnOversizeLayer;

impl<S> Layer<S> for ResourceExhaustedOnOversizeLayer {
    type Service = ResourceExhaustedOnOversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResourceExhaustedOnOversize { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ResourceExhaustedOnOversize<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for ResourceExhaustedOnOversize<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let headers = resp.headers_mut();
            if headers.get("grpc-status").and_then(|v| v.to_str().ok()) == Some(OUT_OF_RANGE) {
                headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
            }
            Ok(resp)
        })
    }
}
