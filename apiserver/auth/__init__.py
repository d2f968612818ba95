"""The apiserver's security pieces, pure except where a module says it touches files.

- pki: the cluster CA, serving and client certificates, `ensure_pki` for a directory;
- jws: JWS compact serialization (ES256/RS256) for service-account tokens;
- tokens: authentication (token file, service-account tokens, client certs);
- user: `UserInfo` and Kubernetes' well-known user and group names;
- rbac: RBAC evaluation and Kubernetes' Forbidden message;
- bootstrap_policy: the default ClusterRoles and ClusterRoleBindings;
- node_restriction: what a node agent may touch beyond what RBAC says;
- kubeconfig: kubeconfig files for kubectl and kubelite's clients.
"""
