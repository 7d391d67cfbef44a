//! The built-in policy every Argo CD installation has underneath `argocd-rbac-cm`: a read-only
//! role, an admin role that includes it, and the local `admin` user as admin. The rules are
//! Argo CD's `builtin-policy.csv`, rule for rule, so permissions mean the same in both, and
//! ferry's rules for the Argo Workflows resources, which Argo CD does not have.

pub(crate) const BUILTIN_POLICY: &str = "\
# role:readonly may read everything except what exec and extensions guard.
p, role:readonly, applications, get, */*, allow
p, role:readonly, applicationsets, get, */*, allow
p, role:readonly, certificates, get, *, allow
p, role:readonly, clusters, get, *, allow
p, role:readonly, repositories, get, *, allow
p, role:readonly, write-repositories, get, *, allow
p, role:readonly, projects, get, *, allow
p, role:readonly, accounts, get, *, allow
p, role:readonly, gpgkeys, get, *, allow
p, role:readonly, logs, get, */*, allow
# ferry's additions for Argo Workflows' API, which Argo CD does not have.
p, role:readonly, workflows, get, */*, allow
p, role:readonly, workflowtemplates, get, */*, allow
p, role:readonly, clusterworkflowtemplates, get, *, allow
p, role:readonly, cronworkflows, get, */*, allow
p, role:readonly, workflowevents, get, */*, allow

# role:admin may do everything, and inherits role:readonly's reads.
p, role:admin, applications, create, */*, allow
p, role:admin, applications, update, */*, allow
p, role:admin, applications, update/*, */*, allow
p, role:admin, applications, delete, */*, allow
p, role:admin, applications, delete/*, */*, allow
p, role:admin, applications, sync, */*, allow
p, role:admin, applications, rollback, */*, allow
p, role:admin, applications, override, */*, allow
p, role:admin, applications, action/*, */*, allow
p, role:admin, applicationsets, get, */*, allow
p, role:admin, applicationsets, create, */*, allow
p, role:admin, applicationsets, update, */*, allow
p, role:admin, applicationsets, delete, */*, allow
p, role:admin, certificates, create, *, allow
p, role:admin, certificates, update, *, allow
p, role:admin, certificates, delete, *, allow
p, role:admin, clusters, create, *, allow
p, role:admin, clusters, update, *, allow
p, role:admin, clusters, delete, *, allow
p, role:admin, repositories, create, *, allow
p, role:admin, repositories, update, *, allow
p, role:admin, repositories, delete, *, allow
p, role:admin, write-repositories, create, *, allow
p, role:admin, write-repositories, update, *, allow
p, role:admin, write-repositories, delete, *, allow
p, role:admin, projects, create, *, allow
p, role:admin, projects, update, *, allow
p, role:admin, projects, delete, *, allow
p, role:admin, accounts, update, *, allow
p, role:admin, gpgkeys, create, *, allow
p, role:admin, gpgkeys, delete, *, allow
p, role:admin, exec, create, */*, allow
p, role:admin, exec, debug, */*, allow
# ferry's additions for Argo Workflows' API, which Argo CD does not have.
p, role:admin, workflows, create, */*, allow
p, role:admin, workflows, update, */*, allow
p, role:admin, workflows, delete, */*, allow
p, role:admin, workflowtemplates, create, */*, allow
p, role:admin, workflowtemplates, update, */*, allow
p, role:admin, workflowtemplates, delete, */*, allow
p, role:admin, clusterworkflowtemplates, create, *, allow
p, role:admin, clusterworkflowtemplates, update, *, allow
p, role:admin, clusterworkflowtemplates, delete, *, allow
p, role:admin, cronworkflows, create, */*, allow
p, role:admin, cronworkflows, update, */*, allow
p, role:admin, cronworkflows, delete, */*, allow
p, role:admin, workflowevents, create, */*, allow

g, role:admin, role:readonly
g, admin, role:admin
";
