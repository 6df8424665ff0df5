"""The capabilities a run can select with --only, in the order suites run them."""

from __future__ import annotations

from meshproof.errors import UserError

CAPABILITIES = ("mtls", "authz", "retries", "timeouts", "outlier", "connpool", "ratelimit", "canary", "load", "chaos")


def parse_only(text: str | None) -> frozenset[str] | None:
    """`--only mtls,authz` -> {"mtls", "authz"}; None selects everything."""
    if text is None:
        return None
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(chosen - set(CAPABILITIES))
    if unknown or not chosen:
        raise UserError(f"--only {text!r}: unknown capability {', '.join(unknown) or '(none given)'}; "
                        f"choose from {','.join(CAPABILITIES)}")
    return frozenset(chosen)
