"""API tokens: roles, and the rules for a token's role and label."""

from __future__ import annotations

from ampgate.errors import ValidationError

# Roles from least to most powerful; each includes everything the ones before it may do. viewer reads,
# operator sends commands to chargers, admin manages chargers and tokens.
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
# A label is a note for the operator ("grafana", "alice's laptop"); 200 characters is plenty and keeps a
# pasted file out of the table.
LABEL_MAX = 200


def validate_role(role: str) -> str:
    """Return `role` if it is one of ROLES, else raise ValidationError(field="role")."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def validate_label(label: str | None) -> str | None:
    """Return `label` if it is None or at most LABEL_MAX characters, else raise ValidationError(field="label")."""
    if label is not None and len(label) > LABEL_MAX:
        raise ValidationError(f"a token label is at most {LABEL_MAX} characters", field="label")
    return label


def role_at_least(role: str, minimum: str) -> bool:
    """True iff `role` may do what `minimum` may. An unknown `role` may do nothing; an unknown `minimum` is a
    programmer error (ValueError)."""
    if minimum not in ROLES:
        raise ValueError(f"unknown role {minimum!r}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(minimum)
