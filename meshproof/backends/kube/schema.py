"""Validate rendered manifests as `kubectl apply` (server-side, strict field validation) would.

A custom resource is checked against the `openAPIV3Schema` of the *served* version its apiVersion names,
taken from the CRDs vendored in `crds/` (see tools/vendor_crds.py), with the API server's structural
schema semantics translated to JSON Schema (draft 4, which is what OpenAPI v3.0 schemas are written
in) and checked by the `jsonschema` package:

- an object schema without `x-kubernetes-preserve-unknown-fields: true` and without its own
  `additionalProperties` accepts no other fields (the API server would prune them; `kubectl apply`
  with strict field validation, its default since Kubernetes 1.27, rejects them instead);
- `x-kubernetes-int-or-string` accepts an integer or a string; `nullable: true` accepts null;
- a null where the schema does not allow it is refused: kube-apiserver 1.37 refuses it in a
  server-side apply ("must be of type string: \"null\"") and drops it silently from a create, even
  with strict field validation (both checked against the real server);
- `x-kubernetes-list-type: set` items must be unique, `map` items unique by their
  `x-kubernetes-list-map-keys`;
- type, enum, required, pattern, min/max (length, items, properties, value), multipleOf, oneOf, anyOf,
  allOf and not, as written;
- `format: duration` is checked (Go's duration syntax, which the API server's strfmt accepts); int32,
  int64 and double are not range-checked by the API server either; date-time and byte occur only in
  `status`, which renderers never write;
- metadata: a name (DNS-1123 subdomain), label keys and values and annotation keys as Kubernetes
  spells them. Stricter than the API server: namespaced kinds must name their namespace, because a
  manifest without one lands in whatever namespace kubectl's context points to.

Core kinds (`v1` Service, the only one renderers produce) have no CRD: their fields and value types
are checked against the models of the `kubernetes` client package (unknown fields and types only;
their enums and required fields are not known there, so not checked).

What it does NOT check: CEL rules. `x-kubernetes-validations` need a CEL engine, which we do not have,
and are skipped, never approximated. `skipped_rules(manifest)` lists every rule that applies to a
field present in a manifest, with its path, so a caller can see what went unchecked. On the kinds
meshproof renders those are (rule families, by CRD):

- Istio (all kinds): durations `duration(self) >= duration('1ms')` (VirtualService timeout,
  retries.perTryTimeout and backoff; DestinationRule outlierDetection interval and baseEjectionTime,
  connectionPool idle/connect timeouts); selector label rules `!self.contains("*")`,
  `self.all(key, !key.contains("*"))`, `self.all(key, key.size() != 0)`; "only one of selector,
  targetRef, targetRefs" on AuthorizationPolicy and "only one of targetRefs or workloadSelector" on
  EnvoyFilter; the AuthorizationPolicy serviceAccounts/principals exclusion; PeerAuthentication's
  `portLevelMtls requires selector` and its port-range rule; EnvoyFilter's WAYPOINT context rule.
- Gateway API HTTPRoute (standard): parentRefs uniqueness (two rules), the backendRef
  `port required for a Service` rule, the limit on the total number of matches, path value rules
  (start with `/`, no `//`, `/./`, `/../`, `%2f`, `#`), filter type/field consistency and
  at-most-one-per-type rules, redirect/rewrite path rules, `timeouts.backendRequest <= request`.
- Linkerd: none (its CRDs carry no CEL rules).

The tests transcribe, for the rules that apply to what the renderers produce, the property each rule
states and check it on the rendered values (tests/test_crd_schema.py); this module does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

Json = dict[str, Any]

CRD_DIR = Path(__file__).with_name("crds")
VENDORED_FILES = ("istio.yaml", "linkerd.yaml", "gateway-api.yaml")

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_QUALIFIED_NAME = re.compile(
    r"^(?:(?P<prefix>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_GO_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")
_STRFMT_DURATION = re.compile(r"^(\s*\d+\s*(ns|us|µs|ms|s|m|h|d|w)\s*)+$")

#: The keywords of an OpenAPI v3.0 schema that mean the same in JSON Schema draft 4.
_SAME_IN_DRAFT4 = (
    "type", "enum", "required", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties",
)
_LIST_MAP_KEYS = "x-meshproof-list-map-keys"
_QUALIFIED_KEYS = "x-meshproof-qualified-keys"

#: ObjectMeta as far as a manifest may set it (the rest is written by the API server).
OBJECT_META: Json = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "labels": {
            "type": "object",
            _QUALIFIED_KEYS: True,
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE},
        },
        "annotations": {"type": "object", _QUALIFIED_KEYS: True, "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


class InvalidManifest(ValueError):
    """One or more manifests would be refused by the API server; the message lists every error."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class CelRule:
    """An `x-kubernetes-validations` rule that applies to a field present in a manifest: not evaluated."""

    path: str
    rule: str
    message: str
    value: Any  # what the rule would have been evaluated on


# --- structural schema -> JSON Schema ------------------------------------------------------------------


def _list_map_keys(validator: Any, keys: Sequence[str], instance: Any, schema: Mapping[str, Any],
                   ) -> Iterator[Any]:
    if not validator.is_type(instance, "array"):
        return
    seen: set[tuple[Any, ...]] = set()
    for item in instance:
        if isinstance(item, Mapping):
            key = tuple(repr(item.get(name)) for name in keys)
            if key in seen:
                yield ValidationError(f"duplicate entry for map keys {dict(zip(keys, key, strict=True))}")
            seen.add(key)


def _qualified_keys(validator: Any, enabled: bool, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    if not enabled or not validator.is_type(instance, "object"):
        return
    for key in instance:
        match = _QUALIFIED_NAME.match(key)
        if not match or len(match.group("name")) > 63 or len(match.group("prefix") or "") > 253:
            yield ValidationError(f"{key!r} is not a qualified name (an optional DNS prefix and '/', a name)")


_FORMATS = FormatChecker(formats=())


def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or bool(_GO_DURATION.match(value) or _STRFMT_DURATION.match(value))


_FORMATS.checks("duration")(_is_duration)


_KubeValidator = validators.extend(
    Draft4Validator, {_LIST_MAP_KEYS: _list_map_keys, _QUALIFIED_KEYS: _qualified_keys}
)


def structural(node: Mapping[str, Any]) -> Json:
    """One CRD schema node as draft-4 JSON Schema with the API server's semantics (see the module doc)."""
    out: Json = {key: node[key] for key in _SAME_IN_DRAFT4 if key in node}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        if "anyOf" not in node:  # a structural schema may spell the alternatives out itself
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node:
        out["properties"] = {name: structural(sub) for name, sub in node["properties"].items()}
    if "items" in node:
        out["items"] = structural(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out["additionalProperties"] = structural(extra)
    elif extra is not None:
        out["additionalProperties"] = extra
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in node:
            out[junctor] = [structural(branch) for branch in node[junctor]]
    if "not" in node:
        out["not"] = structural(node["not"])
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    elif node.get("x-kubernetes-list-type") == "map":
        out[_LIST_MAP_KEYS] = list(node.get("x-kubernetes-list-map-keys", ()))
    if node.get("x-kubernetes-embedded-resource"):
        embedded = out.setdefault("properties", {})
        embedded.update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    return out


def _root_schema(openapi: Mapping[str, Any]) -> Json:
    root = structural(openapi)
    root.setdefault("properties", {}).update(
        apiVersion={"type": "string"}, kind={"type": "string"}, metadata=OBJECT_META
    )
    root["required"] = sorted({*root.get("required", ()), "apiVersion", "kind", "metadata"})
    return root


# --- CEL rules: collected, never evaluated --------------------------------------------------------------

_Step = tuple[str, str]  # ("field", name) | ("items", "") | ("values", "")
_Rule = tuple[tuple[_Step, ...], str, str]  # (where, rule, message)


def _cel_rules(node: Mapping[str, Any], steps: tuple[_Step, ...] = ()) -> Iterator[_Rule]:
    for rule in node.get("x-kubernetes-validations", ()):
        yield steps, rule["rule"], rule.get("message", "")
    for name, sub in node.get("properties", {}).items():
        yield from _cel_rules(sub, (*steps, ("field", name)))
    if "items" in node:
        yield from _cel_rules(node["items"], (*steps, ("items", "")))
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _cel_rules(node["additionalProperties"], (*steps, ("values", "")))


def _present(value: Any, steps: Sequence[_Step], path: str) -> Iterator[tuple[str, Any]]:
    """The concrete paths in `value` that the template `steps` reaches, with what is there."""
    if not steps:
        yield path or "(root)", value
        return
    (kind, name), rest = steps[0], steps[1:]
    if kind == "field" and isinstance(value, Mapping) and name in value:
        yield from _present(value[name], rest, _join(path, name))
    elif kind == "items" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _present(item, rest, f"{path}[{index}]")
    elif kind == "values" and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _present(item, rest, _join(path, str(key)))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- the catalog ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    schema: Json  # the draft-4 translation of the served version's openAPIV3Schema
    cel: tuple[_Rule, ...]


@dataclass(frozen=True)
class _Crd:
    kind: str
    namespaced: bool
    versions: Mapping[str, _Version]  # served versions only


class CrdCatalog:
    """The CustomResourceDefinitions a cluster would have, indexed by (group, kind)."""

    def __init__(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self._crds: dict[tuple[str, str], _Crd] = {}
        self._validators: dict[tuple[str, str, str], Any] = {}
        for crd in crds:
            spec = crd["spec"]
            versions = {
                version["name"]: _Version(
                    _root_schema(version["schema"]["openAPIV3Schema"]),
                    tuple(_cel_rules(version["schema"]["openAPIV3Schema"])),
                )
                for version in spec["versions"]
                if version.get("served")
            }
            key = (spec["group"], spec["names"]["kind"])
            if key in self._crds:
                raise ValueError(f"two CRDs define {key[1]} in group {key[0]}")
            self._crds[key] = _Crd(spec["names"]["kind"], spec.get("scope") == "Namespaced", versions)

    @classmethod
    def from_files(cls, *paths: Path) -> CrdCatalog:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is 10x faster on these 1.3 MB
        documents = []
        for path in paths:
            with path.open() as stream:
                documents += [doc for doc in yaml.load_all(stream, Loader=loader) if doc]
        return cls(doc for doc in documents if doc.get("kind") == "CustomResourceDefinition")

    def kinds(self) -> list[str]:
        """Every served `group/version Kind`, sorted."""
        return sorted(f"{group}/{version} {kind}" for (group, kind), crd in self._crds.items()
                      for version in crd.versions)

    def validate(self, manifest: Mapping[str, Any]) -> list[str]:
        """Every reason the API server would refuse `manifest`, as `<field path>: <what is wrong>`."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return ["(root): apiVersion and kind must be strings"]
        group, _, version = api_version.rpartition("/")
        crd = self._crds.get((group, kind))
        if crd is None:
            if group == "" and kind in CORE_KINDS:
                return _core_errors(manifest)
            return [f"(root): no CustomResourceDefinition for {kind} in group {group!r} is vendored"]
        if version not in crd.versions:
            served = ", ".join(sorted(crd.versions))
            return [f"apiVersion: {api_version} {kind} is not served (served: {served})"]
        errors = [message for error in self._validator(group, kind, version).iter_errors(manifest)
                  for message in _messages(error)]
        errors += _namespace_errors(manifest, crd.namespaced)
        return sorted(set(errors))

    def check(self, manifests: Iterable[Mapping[str, Any]]) -> None:
        """Raise InvalidManifest naming each refused manifest and every error in it."""
        errors = [f"{_describe(item)}: {error}" for item in manifests for error in self.validate(item)]
        if errors:
            raise InvalidManifest(errors)

    def skipped_rules(self, manifest: Mapping[str, Any]) -> list[CelRule]:
        """The CEL rules that apply to fields present in `manifest`; none of them is evaluated."""
        group, _, version = str(manifest.get("apiVersion", "")).rpartition("/")
        crd = self._crds.get((group, str(manifest.get("kind"))))
        if crd is None or version not in crd.versions:
            return []
        return [
            CelRule(path, rule, message, value)
            for steps, rule, message in crd.versions[version].cel
            for path, value in _present(manifest, steps, "")
        ]

    def _validator(self, group: str, kind: str, version: str) -> Any:
        key = (group, kind, version)
        if key not in self._validators:
            self._validators[key] = _KubeValidator(self._crds[(group, kind)].versions[version].schema,
                                                   format_checker=_FORMATS)
        return self._validators[key]


def _path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path or "(root)"


def _messages(error: ValidationError) -> Iterator[str]:
    path = _path(error)
    if error.validator == "additionalProperties" and error.validator_value is False:
        declared = error.schema.get("properties", {})
        for name in error.instance:
            if name not in declared:
                where = _join("" if path == "(root)" else path, name)
                yield f"{where}: unknown field (not declared in the schema)"
    elif error.validator == "type" and error.instance is None:
        yield f"{path}: null is not allowed here (the field is not nullable)"
    elif error.validator in ("oneOf", "anyOf") and error.context:
        reasons = "; ".join(sorted({f"{_path(sub)}: {sub.message}" for sub in error.context}))
        yield f"{path}: {error.message} ({reasons})"
    else:
        yield f"{path}: {error.message}"


def _namespace_errors(manifest: Mapping[str, Any], namespaced: bool) -> list[str]:
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping):
        return []
    if namespaced and not metadata.get("namespace"):
        return ["metadata.namespace: required (a namespaced kind; kubectl would use its context's namespace)"]
    if not namespaced and "namespace" in metadata:
        return ["metadata.namespace: a cluster-scoped kind has no namespace"]
    return []


def _describe(manifest: Mapping[str, Any]) -> str:
    metadata = manifest.get("metadata") if isinstance(manifest.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    return f"{manifest.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name', '?')}"


# --- core kinds, against the kubernetes client's models -------------------------------------------------

#: Core (group "") kinds the renderers produce; namespaced all.
CORE_KINDS = frozenset({"Service"})
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "datetime": (str,), "date": (str,),
    "bytes": (str,),
}


def _core_errors(manifest: Mapping[str, Any]) -> list[str]:
    if manifest.get("apiVersion") != "v1":
        return [f"apiVersion: {manifest.get('apiVersion')} {manifest.get('kind')} is not served (served: v1)"]
    import kubernetes.client as models  # imported here: ~0.5 s, and only core kinds need it

    body = {key: value for key, value in manifest.items() if key != "metadata"}
    errors = list(_model_errors(models, getattr(models, f"V1{manifest['kind']}"), body, ""))
    if "metadata" not in manifest:
        errors.append("metadata: required")
    else:
        errors += [f"metadata{'' if _path(e) == '(root)' else '.' + _path(e)}: {e.message}"
                   for e in _KubeValidator(OBJECT_META).iter_errors(manifest["metadata"])]
    errors += _namespace_errors(manifest, namespaced=True)
    return sorted(errors)


def _model_errors(models: Any, model: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, Mapping):
        yield f"{path or '(root)'}: expected an object, got {type(value).__name__}"
        return
    types = {json_key: model.openapi_types[attr] for attr, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in types:
            yield f"{_join(path, key)}: unknown field (not declared in the schema)"
        else:
            yield from _typed_errors(models, types[key], item, _join(path, key))


_LIST_OF = re.compile(r"^(?:list|List)\[(.+)\]$")
_DICT_OF = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")  # the client's two spellings


def _typed_errors(models: Any, type_name: str, value: Any, path: str) -> Iterator[str]:
    if list_of := _LIST_OF.match(type_name):
        if not isinstance(value, list):
            yield f"{path}: expected a list"
            return
        for index, item in enumerate(value):
            yield from _typed_errors(models, list_of.group(1), item, f"{path}[{index}]")
    elif dict_of := _DICT_OF.match(type_name):
        if not isinstance(value, Mapping):
            yield f"{path}: expected an object"
            return
        for key, item in value.items():
            value_type = dict_of.group(1) or dict_of.group(2)
            yield from _typed_errors(models, value_type, item, _join(path, str(key)))
    elif type_name == "object":  # IntOrString and free-form values
        if value is None:
            yield f"{path}: null is not allowed here"
    elif type_name in _PRIMITIVES:
        if (isinstance(value, bool) and type_name != "bool") or not isinstance(value, _PRIMITIVES[type_name]):
            yield f"{path}: {value!r} is not of type {type_name}"
    else:
        yield from _model_errors(models, getattr(models, type_name), value, path)


# --- the vendored CRDs ----------------------------------------------------------------------------------


@cache
def vendored() -> CrdCatalog:
    """The CRDs meshproof renders (Istio 1.30.3, Linkerd edge-26.8.3, Gateway API v1.6.1 standard)."""
    return CrdCatalog.from_files(*(CRD_DIR / name for name in VENDORED_FILES))


def validate(manifest: Mapping[str, Any]) -> list[str]:
    """`vendored().validate(manifest)`: every reason the API server would refuse it; [] if none."""
    return vendored().validate(manifest)


def check(manifests: Iterable[Mapping[str, Any]]) -> None:
    """Raise InvalidManifest unless every manifest validates against the vendored CRDs."""
    vendored().check(manifests)


def skipped_rules(manifest: Mapping[str, Any]) -> list[CelRule]:
    """The CEL rules of the vendored CRDs that apply to `manifest` and were not evaluated."""
    return vendored().skipped_rules(manifest)
