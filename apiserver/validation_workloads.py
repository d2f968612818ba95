"""Deployment, ReplicaSet, DaemonSet and Job validation (apps and batch validation.go).

The rules kubectl users meet most: the selector is required, must not be empty, and
must match the template's labels (`spec.template.metadata.labels: Invalid value:
map[string]string{"app":"x"}: \\`selector\\` does not match template \\`labels\\``); a
controller's pods must restart Always, a Job's OnFailure or Never; and in apps/v1 the
selector is immutable. Bad values are printed as Go prints them, including metav1's
`&LabelSelector{MatchLabels:map[string]string{app: web,},...}` String() form.
"""

from __future__ import annotations

import json

from apiserver import selectors
from apiserver import validation_errors as fe
from apiserver import validation_meta as meta_validation
from apiserver import validation_pods as pods

Cause = fe.Cause
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_INDEXED_MAX_PARALLELISM = 100000


def validate_deployment(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    causes = _replicated_spec(spec)
    causes += _deployment_strategy(fe.dict_of(spec.get("strategy")), "spec.strategy")
    if spec.get("revisionHistoryLimit") is not None:
        causes += fe.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += fe.nonnegative("spec.progressDeadlineSeconds", deadline)
        if deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(fe.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return causes + _selector_immutable(spec, old)


def validate_replica_set(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    causes = _replicated_spec(spec)
    return causes + _selector_immutable(spec, old)


def validate_daemon_set(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    causes = label_selector_causes(spec.get("selector"), "spec.selector")
    template = fe.dict_of(spec.get("template"))
    labels = fe.dict_of(template.get("metadata")).get("labels")
    try:
        selector = selectors.label_selector_from_dict(spec.get("selector") if isinstance(spec.get("selector"), dict) else None)
        if not selector.matches(fe.dict_of(labels)):
            causes.append(_mismatch(labels))
    except ValueError:
        pass
    selector_spec = spec.get("selector")
    if isinstance(selector_spec, dict) and not (selector_spec.get("matchLabels") or selector_spec.get("matchExpressions")):
        causes.append(fe.invalid("spec.selector", render_label_selector(selector_spec), "empty selector is invalid for daemonset"))
    causes += pods.pod_template_spec(template, "spec.template")
    causes += _restart_always(template, "DaemonSet")
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        causes += fe.nonnegative(f"spec.{key}", spec.get(key))
    strategy = fe.dict_of(spec.get("updateStrategy"))
    kind = fe.str_of(strategy.get("type"))
    if kind == "RollingUpdate" and not isinstance(strategy.get("rollingUpdate"), dict):
        causes.append(fe.required("spec.updateStrategy.rollingUpdate"))
    elif kind not in ("RollingUpdate", "OnDelete"):
        causes.append(fe.not_supported("spec.updateStrategy", fe.GoText(f"apps.DaemonSetUpdateStrategy{{Type:{fe.go_quote(kind)}}}"),
                                       ("RollingUpdate", "OnDelete")))
    return causes + _selector_immutable(spec, old)


def validate_job(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    meta = fe.dict_of(obj.get("metadata"))
    causes: list[Cause] = []
    if old is None:
        causes += _generated_selector(spec, meta)
        completions = spec.get("completions")
        if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
            hostname = f"{fe.str_of(meta.get('name'))}-{completions - 1}"
            if fe.dns1123_label_errors(hostname):
                causes.append(fe.invalid("metadata.name", fe.str_of(meta.get("name")),
                                         f"will not able to create pod with invalid DNS label: {hostname}"))
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += fe.nonnegative(f"spec.{key}", spec.get(key))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            causes.append(fe.not_supported("spec.completionMode", fe.str_of(mode), ("NonIndexed", "Indexed")))
        if mode == "Indexed":
            if spec.get("completions") is None:
                causes.append(fe.required("spec.completions", "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if isinstance(parallelism, int) and parallelism > _INDEXED_MAX_PARALLELISM:
                causes.append(fe.invalid("spec.parallelism", parallelism,
                                         f"must be less than or equal to {_INDEXED_MAX_PARALLELISM} when completion mode is Indexed"))
    template = fe.dict_of(spec.get("template"))
    restart_path = "spec.template.spec.restartPolicy"
    causes += [c for c in pods.pod_template_spec(template, "spec.template")
               if not (c["field"] == restart_path and c["message"] == "Required value")]
    policy = fe.str_of(fe.dict_of(template.get("spec")).get("restartPolicy"))
    if policy in ("Always", ""):
        causes.append(fe.required(restart_path, 'valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        causes.append(fe.not_supported(restart_path, policy, ("OnFailure", "Never")))
    if spec.get("selector") is None:
        causes.append(fe.required("spec.selector"))
    else:
        causes += label_selector_causes(spec.get("selector"), "spec.selector")
    causes += _template_match(spec)
    if old is not None:
        old_spec = fe.dict_of(old.get("spec"))
        causes += fe.immutable("spec.completions", spec.get("completions"), old_spec.get("completions"))
        if spec.get("selector") != old_spec.get("selector"):
            causes.append(fe.invalid("spec.selector", render_label_selector(spec.get("selector")), fe.FIELD_IMMUTABLE))
        if spec.get("template") != old_spec.get("template"):
            causes.append(fe.invalid("spec.template", fe.GoText(_render_struct("core.PodTemplateSpec", spec.get("template"))), fe.FIELD_IMMUTABLE))
        causes += fe.immutable("spec.completionMode", spec.get("completionMode"), old_spec.get("completionMode"))
    return causes


def label_selector_causes(selector: object, path: str) -> list[Cause]:
    """ValidateLabelSelector (strict about label values)."""
    if not isinstance(selector, dict):
        return []
    causes = meta_validation.validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(fe.dicts_of(selector.get("matchExpressions"))):
        at = f"{path}.matchExpressions[{i}]"
        operator, values = fe.str_of(expr.get("operator")), fe.list_of(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(fe.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(fe.forbidden(f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(fe.invalid(f"{at}.operator", operator, "not a valid selector operator"))
        key = fe.str_of(expr.get("key"))
        causes += [fe.invalid(f"{at}.key", key, m) for m in fe.label_key_errors(key)]
        for j, value in enumerate(values):
            causes += [fe.invalid(f"{at}.values[{j}]", fe.str_of(value), m) for m in fe.label_value_errors(fe.str_of(value))]
    return causes


def render_label_selector(selector: object) -> fe.GoText:
    """metav1.LabelSelector's generated String(), which is how Go prints a *LabelSelector value."""
    if not isinstance(selector, dict):
        return fe.GoText("nil")
    labels = "".join(f"{k}: {v}," for k, v in sorted(fe.dict_of(selector.get("matchLabels")).items()))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{fe.str_of(e.get('key'))},Operator:{fe.str_of(e.get('operator'))},"
        f"Values:[{' '.join(fe.str_of(v) for v in fe.list_of(e.get('values')))}],}},"
        for e in fe.dicts_of(selector.get("matchExpressions")))
    return fe.GoText(f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def _replicated_spec(spec: dict) -> list[Cause]:
    """The shared part of ValidateDeploymentSpec and ValidateReplicaSetSpec.

    Both say "deployment" when the selector is empty: Kubernetes reuses the text.
    """
    causes: list[Cause] = []
    for key in ("replicas", "minReadySeconds"):
        causes += fe.nonnegative(f"spec.{key}", spec.get(key))
    selector = spec.get("selector")
    if selector is None:
        causes.append(fe.required("spec.selector"))
    else:
        causes += label_selector_causes(selector, "spec.selector")
        if isinstance(selector, dict) and not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(fe.invalid("spec.selector", render_label_selector(selector), "empty selector is invalid for deployment"))
    template = fe.dict_of(spec.get("template"))
    try:
        parsed = selectors.label_selector_from_dict(selector if isinstance(selector, dict) else None)
    except ValueError:
        causes.append(fe.invalid("spec.selector", render_label_selector(selector), "invalid label selector"))
        return causes
    labels = fe.dict_of(template.get("metadata")).get("labels")
    if not parsed.empty() and not parsed.matches(fe.dict_of(labels)):
        causes.append(_mismatch(labels))
    causes += pods.pod_template_spec(template, "spec.template")
    causes += _restart_always(template, "ReplicaSet")
    return causes


def _restart_always(template: dict, owner: str) -> list[Cause]:
    spec = fe.dict_of(template.get("spec"))
    causes: list[Cause] = []
    policy = fe.str_of(spec.get("restartPolicy"))
    if policy != "Always":
        causes.append(fe.not_supported("spec.template.spec.restartPolicy", policy, ("Always",)))
    if spec.get("activeDeadlineSeconds") is not None:
        causes.append(fe.forbidden("spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {owner} is not Supported"))
    return causes


def _mismatch(labels: object) -> Cause:
    value = fe.go_string_map(labels if isinstance(labels, dict) else None)
    return fe.invalid("spec.template.metadata.labels", value, "`selector` does not match template `labels`")


def _template_match(spec: dict) -> list[Cause]:
    try:
        parsed = selectors.label_selector_from_dict(spec.get("selector") if isinstance(spec.get("selector"), dict) else None)
    except ValueError:
        return []
    labels = fe.dict_of(fe.dict_of(spec.get("template")).get("metadata")).get("labels")
    return [] if parsed.matches(fe.dict_of(labels)) else [_mismatch(labels)]


def _deployment_strategy(strategy: dict, path: str) -> list[Cause]:
    kind = fe.str_of(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [fe.forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [fe.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        causes = _int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
        causes += _int_or_percent(surge, f"{path}.rollingUpdate.maxSurge")
        if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
            causes.append(fe.invalid(f"{path}.rollingUpdate.maxUnavailable", _intstr(unavailable), "may not be 0 when `maxSurge` is 0"))
        if isinstance(unavailable, str) and not fe.percent_errors(unavailable) and int(unavailable[:-1]) > 100:
            causes.append(fe.invalid(f"{path}.rollingUpdate.maxUnavailable", _intstr(unavailable), "must not be greater than 100%"))
        return causes
    rendered = fe.GoText(f"apps.DeploymentStrategy{{Type:{fe.go_quote(kind)}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}")
    return [fe.not_supported(path, rendered, ("Recreate", "RollingUpdate"))]


def _intstr(value: object) -> fe.GoText:
    """IntOrString's String(): the number or the text, unquoted."""
    return fe.GoText(str(value if value is not None else 0))


def _int_or_percent(value: object, path: str) -> list[Cause]:
    if isinstance(value, str):
        return [fe.invalid(path, _intstr(value), m) for m in fe.percent_errors(value)]
    return fe.nonnegative(path, value)


def _int_or_percent_value(value: object) -> int:
    if isinstance(value, str):
        text = value[:-1] if value.endswith("%") else value
        return int(text) if text.isascii() and text.isdigit() else 0
    return value if isinstance(value, int) else 0


def _selector_immutable(spec: dict, old: dict | None) -> list[Cause]:
    """apps/v1 strategies: spec.selector may not change after create."""
    if old is None:
        return []
    old_selector = fe.dict_of(old.get("spec")).get("selector")
    if _normal_selector(spec.get("selector")) == _normal_selector(old_selector):
        return []
    return [fe.invalid("spec.selector", render_label_selector(spec.get("selector")), fe.FIELD_IMMUTABLE)]


def _normal_selector(selector: object) -> object:
    if not isinstance(selector, dict):
        return selector
    return {k: v for k, v in selector.items() if v not in (None, {}, [])}


def _generated_selector(spec: dict, meta: dict) -> list[Cause]:
    """ValidateGeneratedSelector, when the handler has already set the uid."""
    uid, name = fe.str_of(meta.get("uid")), fe.str_of(meta.get("name"))
    if spec.get("manualSelector") is True or spec.get("selector") is None or not uid:
        return []
    template_meta = fe.dict_of(fe.dict_of(spec.get("template")).get("metadata"))
    labels = fe.dict_of(template_meta.get("labels"))
    causes: list[Cause] = []
    for key, expected in (("controller-uid", uid), ("job-name", name),
                          ("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name)):
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(fe.required(path, f"must be '{expected}'"))
        elif labels[key] != expected:
            causes.append(fe.invalid(path, fe.go_string_map(labels), f"must be '{expected}'"))
    try:
        selector = selectors.label_selector_from_dict(spec.get("selector"))
    except ValueError:
        return causes
    if not selector.matches({"controller-uid": uid, "job-name": name, "batch.kubernetes.io/controller-uid": uid,
                             "batch.kubernetes.io/job-name": name}):
        causes.append(fe.invalid("spec.selector", render_label_selector(spec.get("selector")), "`selector` not auto-generated"))
    return causes


def _render_struct(type_name: str, value: object) -> str:
    """An approximation of Go's %#v for a nested struct: the type, then the JSON."""
    return f"{type_name}{json.dumps(value, sort_keys=True, separators=(',', ':'))}"
