"""Signed releases and approvals: SSH signatures over audit records, as git signs commits.

When ``prompts/allowed_signers`` exists (the format of ``ssh-keygen``'s
``ALLOWED SIGNERS`` file: a principal, usually an email, and a public key per line),
``release`` and ``approve`` sign their audit record's sha256 with the actor's SSH key
(``ssh-keygen -Y sign``, namespace ``aisys-prompts``) and `Registry.verify` checks every
signature against the file — so four eyes compares who signed, not what was typed.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from aisys.errors import PromptError

__all__ = ["NAMESPACE", "SIGNERS_FILE", "signer_of", "signing_key", "sign"]

NAMESPACE = "aisys-prompts"
"""The signature namespace: a signature made for prompts is valid for nothing else."""
SIGNERS_FILE = "allowed_signers"


def _keygen(*args: str, data: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - ssh-keygen with our own arguments
            ["ssh-keygen", *args],  # noqa: S607 - ssh-keygen from PATH, as git runs it
            input=data,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        msg = (
            "signing prompts needs ssh-keygen (OpenSSH 8.2 or newer; Debian: "
            f"apt-get install openssh-client): {exc}"
        )
        raise PromptError(msg) from None


def signing_key(key: str | None) -> str:
    """The private key to sign with: ``key``, else ``git config user.signingkey``."""
    if key:
        return key
    try:
        found = subprocess.run(
            ["git", "config", "user.signingkey"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    if not found:
        msg = (
            f"this prompts directory has an {SIGNERS_FILE} file, so releases and "
            "approvals are signed: pass --key ~/.ssh/id_ed25519 (or set git config "
            "user.signingkey)"
        )
        raise PromptError(msg)
    return found


def sign(digest: str, key: str, signers: Path) -> tuple[str, str]:
    """(signature, signer) for a record's sha256: signed with ``key``, found in ``signers``."""
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "record"
        record.write_text(digest)
        done = _keygen("-Y", "sign", "-f", key, "-n", NAMESPACE, str(record))
        if done.returncode != 0:
            msg = f"ssh-keygen could not sign with {key}: {done.stderr.strip()}"
            raise PromptError(msg)
        signature = record.with_name("record.sig").read_text()
    signer = signer_of(digest, signature, signers)
    if signer is None:
        msg = (
            f"the key {key} is not in {signers} (or its signature does not verify): "
            "add your public key there, with your email, in a reviewed change"
        )
        raise PromptError(msg)
    return signature, signer


def signer_of(digest: str, signature: str, signers: Path) -> str | None:
    """Who signed ``digest`` (a principal of ``signers``), or None if nobody did."""
    with tempfile.TemporaryDirectory() as scratch:
        sig = Path(scratch) / "record.sig"
        sig.write_text(signature)
        found = _keygen("-Y", "find-principals", "-s", str(sig), "-f", str(signers))
        for principal in found.stdout.split():
            checked = _keygen(
                "-Y", "verify", "-f", str(signers), "-I", principal,
                "-n", NAMESPACE, "-s", str(sig),
                data=digest,
            )  # fmt: skip
            if checked.returncode == 0:
                return principal
    return None
