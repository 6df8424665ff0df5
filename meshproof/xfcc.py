"""Reading Envoy's x-forwarded-client-cert header (the local mesh and Istio both set it).

Format: comma-separated elements, one per proxy hop, each `Key=Value;Key=Value`, values optionally
quoted. The last element describes the client certificate of the immediate peer.
"""

from __future__ import annotations

from meshproof.intent import Identity


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def elements(header: str) -> list[dict[str, str]]:
    result = []
    for element in _split(header, ","):
        fields: dict[str, str] = {}
        for pair in _split(element.strip(), ";"):
            key, sep, value = pair.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip('"')
        if fields:
            result.append(fields)
    return result


def peer_uri(header: str) -> str | None:
    """The URI SAN of the immediate peer's certificate, if the header carries one."""
    found = elements(header)
    return found[-1].get("URI") if found else None


def peer_identity(header: str) -> Identity | None:
    """The immediate peer's SPIFFE identity, if the header carries one that parses as such."""
    uri = peer_uri(header)
    if not uri:
        return None
    try:
        return Identity.parse(uri)
    except ValueError:
        return None
