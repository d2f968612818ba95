"""The scheduler's pure decision logic: which node a pod goes to, or why none fits.

Shaped like kube-scheduler's framework, without its plugin machinery: `PodInfo` is a pod
parsed once, `NodeInfo` a node with the aggregates of the pods on it (kept up to date by
`cache.Snapshot`, which also holds pods assumed but not yet seen bound), `filters` and
`scores` are the default plugins as plain functions, `fit_error` words a failure the way
kube-scheduler does, and `schedule.schedule()` ties them together, with `columns`
remembering each pod template's per-node verdicts between decisions. Nothing here does
I/O or reads a clock: the scheduler process feeds informer events in and writes
bindings, conditions and events (built by `events`) out.

Modules: resources, taints, affinity, podinfo, nodeinfo, cache, filters, scores,
columns, fit_error, schedule, events.
"""
