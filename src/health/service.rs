//! The gateway's own `grpc.health.v1.Health` (Check and Watch) on the main
//! listener, answered from the live gateway's readiness (see the module
//! docs of [`crate::health`]).

use super::*;

/// The gRPC path prefix the gateway answers itself.
const HEALTH_PATH: &str = "/grpc.health.v1.Health/";

/// The gateway's own `grpc.health.v1.Health` (see the module docs).
#[derive(Debug, Clone)]
pub struct GrpcHealth {
    live: Arc<Live>,
}

impl GrpcHealth {
    /// The tonic service answering for `live`.
    pub fn server(live: Arc<Live>) -> HealthServer<GrpcHealth> {
        HealthServer::new(GrpcHealth { live })
    }
}

/// Whether `req` is a native gRPC call to `grpc.health.v1.Health`, which
/// the gateway answers itself.
pub fn is_health_call(req: &Request<Body>) -> bool {
    req.uri().path().starts_with(HEALTH_PATH) && crate::protocol::grpc::is_grpc(req.headers())
}

/// Answers a [`is_health_call`] request.
pub async fn serve(server: HealthServer<GrpcHealth>, req: Request<Body>) -> Response<Body> {
    match server.oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl health_server::Health for GrpcHealth {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        let service = request.into_inner().service;
        let gw = self.live.current();
        match self.live.health().service_status(&gw, &service).await {
            Some(s) => Ok(tonic::Response::new(response(s))),
            None => Err(tonic::Status::not_found(format!(
                "unknown service {service:?}"
            ))),
        }
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, tonic::Status>>;

    /// The status now, then each change, until the gateway stops. Changes
    /// are seen when a prober's answer changes, a reload swaps the
    /// snapshot, or the drain begins.
    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let service = request.into_inner().service;
        let live = self.live.clone();
        let rx = live.health().signal.subscribe();
        // State: the last status sent, and whether the stream is over.
        let stream = stream::unfold(
            (live, rx, None::<ServingStatus>, false),
            move |(live, mut rx, last, over)| {
                let service = service.clone();
                async move {
                    if over {
                        return None;
                    }
                    loop {
                        if rx.borrow_and_update().phase == Phase::Stopped {
                            // The last word is NOT_SERVING, then the stream ends
                            // so that graceful shutdown does not wait on it.
                            let last_word = ServingStatus::NotServing;
                            let sent = last == Some(last_word);
                            return (!sent)
                                .then(|| (Ok(response(last_word)), (live, rx, last, true)));
                        }
                        let gw = live.current();
                        let now = live
                            .health()
                            .service_status(&gw, &service)
                            .await
                            .unwrap_or(ServingStatus::ServiceUnknown);
                        if last != Some(now) {
                            return Some((Ok(response(now)), (live, rx, Some(now), false)));
                        }
                        rx.changed().await.ok()?;
                    }
                }
            },
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}
