"""Regenerate meshproof/backends/kube/crds/ from the published CRD bundles (the shared `crds/` folder).

Only the CustomResourceDefinitions meshproof renders are kept, each one *whole* and byte for byte as
upstream wrote it (every served version, descriptions and CEL rules included), behind a header naming
the source repository, tag and commit and the `# ---- source:` line (upstream path and git blob) of
the bundle it came from. Nothing is edited, so any vendored CRD can still be checked against upstream
with `git rev-parse <tag>:<path>`.

    python tools/vendor_crds.py                 # rewrite the vendored files from ../shared/crds
    python tools/vendor_crds.py --check         # exit 1 if they differ from what would be written
    python tools/vendor_crds.py --source DIR    # read the bundles from DIR instead

The selection is made on the text (metadata.name and the Gateway API channel annotation), then every
selected document is parsed to make sure it is the CustomResourceDefinition its name says.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "crds"
TARGET = REPO / "meshproof" / "backends" / "kube" / "crds"

#: bundle file -> (the CRDs to keep, the Gateway API channel to take them from or None)
SELECTION: dict[str, tuple[tuple[str, ...], str | None]] = {
    "istio.yaml": (
        (
            "peerauthentications.security.istio.io",
            "authorizationpolicies.security.istio.io",
            "virtualservices.networking.istio.io",
            "destinationrules.networking.istio.io",
            "envoyfilters.networking.istio.io",
        ),
        None,
    ),
    "linkerd.yaml": (
        (
            "servers.policy.linkerd.io",
            "authorizationpolicies.policy.linkerd.io",
            "meshtlsauthentications.policy.linkerd.io",
            "networkauthentications.policy.linkerd.io",
            "httproutes.policy.linkerd.io",
            "httplocalratelimitpolicies.policy.linkerd.io",
        ),
        None,
    ),
    "gateway-api.yaml": (("httproutes.gateway.networking.k8s.io",), "standard"),
}
SOURCE_COMMENT = "# ---- source:"
_METADATA_NAME = re.compile(r"^  name: (\S+)$", re.MULTILINE)  # metadata.name: the only `name` two spaces in
_CHANNEL = re.compile(r"^    gateway\.networking\.k8s\.io/channel: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    source: str  # the bundle's `# ---- source:` line in force where the document starts
    text: str  # the upstream document, without the bundle's own source comments

    @property
    def name(self) -> str:
        match = _METADATA_NAME.search(self.text)
        return match.group(1) if match else ""

    @property
    def channel(self) -> str | None:
        match = _CHANNEL.search(self.text)
        return match.group(1) if match else None


def split_bundle(text: str) -> tuple[list[str], list[Document]]:
    """The bundle's leading comment block, and its documents in order."""
    lines = text.splitlines()
    header: list[str] = []
    while lines and lines[0].startswith("#") and not lines[0].startswith(SOURCE_COMMENT):
        header.append(lines.pop(0))
    documents: list[Document] = []
    source = ""  # the source comment in force
    chunk: list[str] = []
    chunk_source: str | None = None  # bound at the chunk's first YAML line

    def flush() -> None:
        nonlocal chunk_source
        if chunk_source is not None:
            documents.append(Document(chunk_source, "\n".join(chunk).strip("\n") + "\n"))
        chunk.clear()
        chunk_source = None

    for line in lines:
        if line == "---":
            flush()
        elif line.startswith(SOURCE_COMMENT):
            # Linkerd's bundle puts the comment before the `---` that opens its document, Gateway API's
            # after it: either way it names the next document whose YAML starts after it.
            source = line
        else:
            if chunk_source is None and line.strip() and not line.startswith("#"):
                chunk_source = source
            chunk.append(line)
    flush()
    return header, documents


def vendored_text(bundle_name: str, bundle: str) -> str:
    """The vendored file for one bundle: its provenance header, then the selected CRDs in bundle order."""
    names, channel = SELECTION[bundle_name]
    header, documents = split_bundle(bundle)
    chosen = [doc for doc in documents if doc.name in names and (channel is None or doc.channel == channel)]
    found = sorted(doc.name for doc in chosen)
    if found != sorted(names):
        raise SystemExit(f"{bundle_name}: expected exactly {sorted(names)}, found {found}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for doc in chosen:
        crd = yaml.load(doc.text, Loader=loader)
        if crd.get("kind") != "CustomResourceDefinition" or crd["metadata"]["name"] != doc.name:
            raise SystemExit(f"{bundle_name}: the document named {doc.name} is not that CRD")
    digest = hashlib.sha256(bundle.encode()).hexdigest()
    out = [
        *header,
        f"# Vendored by tools/vendor_crds.py from the shared crds/{bundle_name} (sha256 {digest}):",
        f"#   only the CRDs meshproof renders{f' ({channel} channel)' if channel else ''}, each upstream"
        " document unmodified. DO NOT EDIT; rerun the tool.",
    ]
    for doc in chosen:
        out += ["---", doc.source, doc.text.rstrip("\n")]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"bundle folder (default {DEFAULT_SOURCE})")
    parser.add_argument("--check", action="store_true",
                        help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    for bundle_name in SELECTION:
        text = vendored_text(bundle_name, (args.source / bundle_name).read_text())
        target = TARGET / bundle_name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(str(target))
        else:
            TARGET.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"{target.relative_to(REPO)}: {len(text):,} bytes")
    if stale:
        print(f"out of date (run tools/vendor_crds.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
