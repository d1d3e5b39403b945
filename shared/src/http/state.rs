//! What every handler is given: the shared [`AppState`] (service, auth, HTTP settings, the profile's resource
//! types) and the per-request [`RequestCtx`] the middleware sets (tenant, base URL, `/Me` user).
//!
//! Imports: the crate's `auth`, `config`, `schema`, `service`, `profile`, `metrics`, `events`, `manage` (the tenant gate); nothing else of
//! `http`, so every other module of `http` may import it.

use crate::auth::Auth;
use crate::config::HttpConfig;
use crate::metrics::Metrics;
use crate::schema::{self, ResourceKind, ResourceType};
use crate::service::Service;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub auth: Arc<Auth>,
    pub http: Arc<HttpConfig>,
    /// The resource types this deployment serves (discovery lists exactly these).
    pub resource_types: Arc<Vec<&'static ResourceType>>,
    /// Per-tenant request metrics (recorded by `middleware::observe`; settings from the environment).
    pub metrics: Arc<Metrics>,
    /// The events log the Events API reads (`docs/events.md`); None: `/Events` answers 404.
    pub events: Option<Arc<crate::events::EventLog>>,
    /// Whether a tenant's requests are served (paused, being deleted): `manage::gate`.
    pub gate: Arc<crate::manage::gate::TenantGate>,
}

impl AppState {
    /// With the default profile (Users with the enterprise extension, and Groups).
    pub fn new(service: Service, auth: Auth, http: HttpConfig) -> Self {
        AppState {
            service: Arc::new(service),
            auth: Arc::new(auth),
            http: Arc::new(http),
            resource_types: Arc::new(vec![
                schema::user_resource_type(),
                schema::group_resource_type(),
            ]),
            metrics: Arc::new(Metrics::from_env()),
            events: None,
            gate: Arc::new(
                crate::manage::gate::TenantGate::from_env().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "tenant gate settings ignored");
                    crate::manage::gate::TenantGate::default()
                }),
            ),
        }
    }

    /// With the resource types and extensions of `profile`.
    pub fn with_profile(
        service: Service,
        auth: Auth,
        http: HttpConfig,
        profile: &crate::profile::Profile,
    ) -> Self {
        AppState {
            resource_types: Arc::new(profile.resource_types.clone()),
            ..AppState::new(service, auth, http)
        }
    }

    /// The profile's resource type of this kind, if the profile serves it.
    pub(super) fn resource_type(&self, kind: ResourceKind) -> Option<&'static ResourceType> {
        self.resource_types.iter().copied().find(|r| r.kind == kind)
    }
}

/// Per-request context, set by the middleware.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub tenant: String,
    /// Absolute base URL of the SCIM API for this request (`https://host/scim/v2`).
    pub base_url: String,
    /// The user the presented token is bound to (`/Me`).
    pub me: Option<String>,
}
