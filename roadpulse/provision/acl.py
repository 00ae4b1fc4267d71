"""The broker's side of per-gateway identity: Mosquitto password-file lines and ACL.

A gateway's identity is its username, or its certificate's CN on a listener with
`use_identity_as_username true`. It is never the client id, which the device chooses.
The ACL is built from `pattern` lines, where mosquitto puts that identity in for `%u`:
a gateway may publish only under `{prefix}/%u/` and read only its own `cmd` (and `ack`,
kept for end-to-end confirmations). Collectors are named users with their own role.
Pure: strings in, strings out.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from roadpulse.wire.topics import DEFAULT_PREFIX, validate_gateway_id

GATEWAY_PUBLISHES = ("data", "birth", "death", "health")
GATEWAY_READS = ("cmd", "ack")  # ack: reserved for the end-to-end confirmations topic
# Mosquitto 2.0's own format and defaults (mosquitto_passwd, sha512-pbkdf2): $7$iterations$salt$hash.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


def password_line(username: str, password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """One line of a Mosquitto 2.0 password file, as `mosquitto_passwd -b` writes it."""
    if ":" in username or "\n" in username:
        raise ValueError(f"username {username!r} may not contain ':' or a newline")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"{username}:$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def gateway_acl(prefix: str = DEFAULT_PREFIX) -> str:
    """`pattern` lines for every gateway: the same file serves any number of them."""
    lines = ["# Gateways: %u is the username, or the certificate CN (use_identity_as_username)."]
    lines += [f"pattern write {prefix}/%u/{kind}" for kind in GATEWAY_PUBLISHES]
    lines += [f"pattern read {prefix}/%u/{kind}" for kind in GATEWAY_READS]
    return "\n".join(lines) + "\n"


def collector_acl(username: str, prefix: str = DEFAULT_PREFIX) -> str:
    """A collector reads every gateway's topics, may send commands (rebirth requests) and confirmations."""
    validate_gateway_id(username)  # same rules: it is a topic level in the patterns too
    lines = [f"user {username}"]
    lines += [f"topic read {prefix}/+/{kind}" for kind in GATEWAY_PUBLISHES]
    lines.append(f"topic write {prefix}/+/cmd")
    lines.append(f"topic write {prefix}/+/ack")  # end-to-end confirmations (roadpulse.wire.confirm)
    return "\n".join(lines) + "\n"


def broker_acl(collectors: list[str], prefix: str = DEFAULT_PREFIX) -> str:
    """A whole ACL file: the gateway patterns, then one block per collector user."""
    return gateway_acl(prefix) + "".join("\n" + collector_acl(name, prefix) for name in collectors)
