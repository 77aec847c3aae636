"""Shared building blocks: the model base class, conditions, references and identities."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import alias_generators


class Model(pydantic.BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields refused, values validated."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The wire form: camelCase keys, ``None`` fields left out, datetimes as RFC 3339."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# A name of a Kubernetes object (RFC 1123 subdomain, as metadata.name of most kinds).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A namespace name (RFC 1123 label).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ObjectName = Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
NamespaceName = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ShortText = Annotated[str, pydantic.Field(max_length=256)]
LongText = Annotated[str, pydantic.Field(max_length=4096)]


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """A Kubernetes-style status condition (as ``metav1.Condition``)."""

    type: Annotated[str, pydantic.Field(min_length=1, max_length=316)]
    """What the condition is about: Ready, Valid, Active, Approved, Applied…"""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    """A CamelCase code for why, stable enough for alerts (e.g. WaitingForApproval)."""
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    """The same for people: what happened, naming the field and what would be allowed."""
    last_transition_time: datetime.datetime
    """When status last changed."""
    observed_generation: Annotated[int, pydantic.Field(ge=0)] | None = None
    """The metadata.generation this condition was computed from."""


class LocalObjectReference(Model):
    """A reference to an object by name (cluster-scoped, or in the referrer's namespace)."""

    name: ObjectName
    """The object's metadata.name."""


class UserInfo(Model):
    """An authenticated identity, as the apiserver reports it to admission webhooks.

    Written by the admission webhook only; whatever a client puts here is overwritten.
    """

    username: Annotated[str, pydantic.Field(min_length=1, max_length=512)]
    """The authenticated user name (system:serviceaccount:NS:NAME for ServiceAccounts)."""
    uid: Annotated[str, pydantic.Field(max_length=256)] | None = None
    """The user's uid, when the authenticator gives one."""
    groups: list[Annotated[str, pydantic.Field(max_length=512)]] = pydantic.Field(
        default_factory=list, max_length=256
    )
    """The groups the user was authenticated with."""


class PrinterColumn(Model):
    """One ``additionalPrinterColumns`` entry of a CRD version."""

    name: str
    type: str
    json_path: str
    description: str | None = None
    priority: int | None = None
    format: str | None = None


class ResourceMeta:
    """CRD-level facts a model of a top-level kind declares (read by :mod:`crdgen`)."""

    kind: ClassVar[str]
    plural: ClassVar[str]
    singular: ClassVar[str]
    short_names: ClassVar[list[str]]
    namespaced: ClassVar[bool]
    printer_columns: ClassVar[list[PrinterColumn]]
    categories: ClassVar[list[str]] = ["agentauthority"]
