"""A deployment's spec, the changes asked of it, and a readable diff. Pure logic: no Airflow imports, no I/O.

A spec is the deployment as GetDeployment returns it, less what the service keeps for itself (job summary,
creation and modification times and users): what UpdateDeployment takes back. :class:`SpecChanges` applies
the changes a task asks for; :func:`spec_diff` says what they change, path by dotted path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: What GetDeployment answers that the service keeps for itself and UpdateDeployment does not take.
READ_ONLY_FIELDS = (
    "jobSummary",
    "createdAt",
    "modifiedAt",
    "creator",
    "creatorName",
    "modifier",
    "modifierName",
    "deploymentHasChanged",
    "referencedDeploymentDraftId",
)
#: Words in a field's name whose value a diff never shows (a password in the Flink configuration).
SENSITIVE_WORDS = ("password", "secret", "token", "accesskey", "access-key", "access_key", "credential")
HIDDEN = "<hidden>"
_SHOWN_CHARS = 80


def spec_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The deployment's spec: a deep copy without :data:`READ_ONLY_FIELDS`."""
    return {key: _copy(value) for key, value in deployment.items() if key not in READ_ONLY_FIELDS}


@dataclass(frozen=True)
class SpecChanges:
    """What a task changes in a deployment; None leaves a part as it is.

    :param sql_script: the SQL text of a SQL deployment (``artifact.sqlArtifact.sqlScript``).
    :param jar_uri: the JAR of a JAR deployment (``artifact.jarArtifact.jarUri``).
    :param entry_class: its main class (``artifact.jarArtifact.entryClass``).
    :param main_args: its arguments, one string (``artifact.jarArtifact.mainArgs``).
    :param parallelism: the job's parallelism (``<mode>ResourceSetting.basicResourceSetting.parallelism``, for
        the deployment's execution mode).
    :param resource_setting: merged into the resource setting of the deployment's execution mode.
    :param flink_conf: merged into ``flinkConf``; a value of None removes the key.
    :param local_variables: the deployment's ``${name}`` variables, all of them.
    :param engine_version: the Flink engine (``vvr-8.0.9-flink-1.17``...).
    :param labels: merged into ``labels``; a value of None removes the label.
    :param spec: the whole spec to start from (e.g. an earlier task's ``previous_spec``, to roll back), instead
        of the deployment's current one; the other changes apply on top.
    """

    sql_script: str | None = None
    jar_uri: str | None = None
    entry_class: str | None = None
    main_args: str | None = None
    parallelism: int | None = None
    resource_setting: Mapping[str, Any] | None = None
    flink_conf: Mapping[str, Any] | None = None
    local_variables: Mapping[str, str] | None = None
    engine_version: str | None = None
    labels: Mapping[str, Any] | None = None
    spec: Mapping[str, Any] | None = field(default=None, repr=False)

    def check(self) -> None:
        """Refuse values no deployment takes, naming the parameter, the value and the fix."""
        for name in ("sql_script", "jar_uri", "entry_class", "main_args", "engine_version"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or (name != "main_args" and not value.strip())):
                raise ValueError(f"{name} must be a non-empty string (or None to leave it), got {value!r}")
        if self.sql_script is not None and any(
            value is not None for value in (self.jar_uri, self.entry_class, self.main_args)
        ):
            raise ValueError(
                "sql_script changes a SQL deployment and jar_uri, entry_class, main_args a JAR one: pass one kind"
            )
        if self.parallelism is not None and (type(self.parallelism) is not int or self.parallelism < 1):
            raise ValueError(f"parallelism must be a whole number of 1 or more, got {self.parallelism!r}")
        for name in ("resource_setting", "flink_conf", "local_variables", "labels", "spec"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a mapping (a dict), got {type(value).__name__} {value!r}")

    def apply(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """The spec ``current`` (a :func:`spec_of`) becomes with these changes; ``current`` is left as it is.

        Raises ValueError for a change the deployment cannot take (a JAR for a SQL deployment).
        """
        self.check()
        spec = spec_of(self.spec) if self.spec is not None else _copy(current)
        for key in ("deploymentId", "name", "namespace", "workspace", "executionMode"):
            if key in current:  # a spec from elsewhere never moves the update to another deployment
                spec[key] = current[key]
        self._apply_artifact(spec)
        mode = "batchResourceSetting" if spec.get("executionMode") == "BATCH" else "streamingResourceSetting"
        if self.resource_setting is not None:
            spec[mode] = _merged(spec.get(mode) or {}, self.resource_setting)
        if self.parallelism is not None:
            spec[mode] = _merged(spec.get(mode) or {}, {"basicResourceSetting": {"parallelism": self.parallelism}})
        if self.flink_conf is not None:
            spec["flinkConf"] = _merged(spec.get("flinkConf") or {}, self.flink_conf)
        if self.labels is not None:
            spec["labels"] = _merged(spec.get("labels") or {}, self.labels)
        if self.local_variables is not None:
            spec["localVariables"] = [{"name": str(k), "value": str(v)} for k, v in self.local_variables.items()]
        if self.engine_version is not None:
            spec["engineVersion"] = self.engine_version
        return spec

    def _apply_artifact(self, spec: dict[str, Any]) -> None:
        jar = {"jarUri": self.jar_uri, "entryClass": self.entry_class, "mainArgs": self.main_args}
        jar = {key: value for key, value in jar.items() if value is not None}
        if self.sql_script is None and not jar:
            return
        artifact = spec.get("artifact") or {}
        kind = artifact.get("kind")
        wanted, key, values = (
            ("SQLSCRIPT", "sqlArtifact", {"sqlScript": self.sql_script}) if not jar else ("JAR", "jarArtifact", jar)
        )
        if kind is not None and kind != wanted:
            given = "sql_script" if wanted == "SQLSCRIPT" else "jar_uri, entry_class or main_args"
            raise ValueError(
                f"{given} cannot change deployment {spec.get('deploymentId')!r}: its artifact is {kind}, "
                "and an artifact's kind cannot change after creation: create another deployment"
            )
        spec["artifact"] = _merged(artifact, {"kind": wanted, key: values})


@dataclass(frozen=True)
class SpecChange:
    """One difference between two specs: the dotted path, the value before and after (None: absent)."""

    path: str
    before: Any
    after: Any

    def describe(self) -> str:
        """``path: before -> after``, values as short JSON; a sensitive field's values hidden."""
        if _sensitive(self.path):
            return f"{self.path}: {HIDDEN} -> {HIDDEN}"
        return f"{self.path}: {_shown(self.before)} -> {_shown(self.after)}"


def spec_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[SpecChange]:
    """What differs between two specs, sorted by path. Objects are compared key by key (``a.b.c``); lists as a
    whole, but ``localVariables`` by name (``localVariables.date``)."""
    flat_before, flat_after = _flat(before), _flat(after)
    return [
        SpecChange(path, flat_before.get(path), flat_after.get(path))
        for path in sorted(set(flat_before) | set(flat_after))
        if flat_before.get(path, _ABSENT) != flat_after.get(path, _ABSENT)
    ]


_ABSENT = object()


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path == "localVariables" and isinstance(item, list) and all(isinstance(v, Mapping) for v in item):
            item = {str(variable.get("name")): variable.get("value") for variable in item}
        if isinstance(item, Mapping) and item:
            flat.update(_flat(item, f"{path}."))
        else:
            flat[path] = item
    return flat


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, objects key by key; a None value removes the key."""
    merged: dict[str, Any] = _copy(dict(base))
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


def _sensitive(path: str) -> bool:
    name = path.rsplit(".", 1)[-1].lower()
    return any(word in name for word in SENSITIVE_WORDS)


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"
