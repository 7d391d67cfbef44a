//! API server: REST, events, auth, RBAC, webhooks, metrics.
