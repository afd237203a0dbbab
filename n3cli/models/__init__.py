"""Architectures (N3Net and its blocks), their configs, descriptors and the name registry."""

from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.n3net import N3Net
from n3cli.models.registry import ModelSpec, descriptor_for, get_spec, list_specs, register

__all__ = ["N3NetConfig", "ModelDescriptor", "N3Net", "ModelSpec", "descriptor_for",
           "get_spec", "list_specs", "register"]
