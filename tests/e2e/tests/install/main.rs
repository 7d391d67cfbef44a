//! Installing ferry into a cluster: the Kustomize install in deploy/ and the Helm chart in
//! charts/ferry build, hold ferry's own CRDs, agree with each other, carry the chart's values and
//! pass the API server's validation; a Helm release installs, upgrades and uninstalls keeping the
//! Applications; the API server works with the rights the chart gives it; and ferry manages its
//! own installation through an Application. kwok nodes run no containers: the install's pods are
//! only scheduled, ferry's processes run beside the sandbox.

mod cluster;
mod manifests;
mod tools;
