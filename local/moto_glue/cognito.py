"""A user pool's SRP sign-in (USER_SRP_AUTH) as Cognito does it, on moto's cognito-idp.

moto answers USER_SRP_AUTH with random stand-ins for SRP_B and SALT and then signs in whoever
answers the PASSWORD_VERIFIER challenge, whatever the password; and it names the user by its `sub`
in USER_ID_FOR_SRP, which it then cannot find when a client (amazon-cognito-identity-js, the web
console's) answers with that name. So a wrong password signed in on the local stack, and the
console could not sign in at all.

Here the server side of Cognito's SRP-6a is computed from the user's password (moto keeps it): the
challenge carries a real salt, B = k*v + g^b and a secret block, USER_ID_FOR_SRP is the username,
and the PASSWORD_CLAIM_SIGNATURE must be the HMAC of the key both sides derive; anything else is
Cognito's `NotAuthorizedException: Incorrect username or password.` The group, hash and key
derivation are pycognito's (the client library `aiwf login` uses), which are
amazon-cognito-identity-js's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any

_challenges: dict[str, _Challenge] = {}  # secret block -> the server's half of one sign-in
_lock = threading.Lock()
_installed = False


@dataclass(frozen=True)
class _Challenge:
    pool_id: str
    username: str
    key: bytes  # the derived key (HKDF of S and u)

    def verifies(self, responses: dict[str, str], secret_block: str) -> bool:
        message = (
            self.pool_id.split("_", 1)[1].encode()
            + self.username.encode()
            + base64.standard_b64decode(secret_block)
            + str(responses.get("TIMESTAMP", "")).encode()
        )
        expected = base64.standard_b64encode(hmac.new(self.key, message, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(expected, str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")))


def _server_half(pool_id: str, username: str, password: str, srp_a: str) -> tuple[dict[str, str], bytes] | None:
    """(SALT, SRP_B) and the derived key for this sign-in; None for an A that SRP refuses (A % N == 0)."""
    from pycognito.aws_srp import G_HEX, N_HEX, calculate_u, compute_hkdf, hash_sha256, hex_hash, long_to_hex, pad_hex

    big_n, g = int(N_HEX, 16), int(G_HEX, 16)
    k = int(hex_hash("00" + N_HEX + "0" + G_HEX), 16)
    big_a = int(srp_a, 16)
    if big_a % big_n == 0:
        return None
    salt = "4" + secrets.token_hex(16)[1:]  # no leading zero nibble: every client pads it alike
    secret = hash_sha256(f"{pool_id.split('_', 1)[1]}{username}:{password}".encode())
    x = int(hex_hash(pad_hex(salt) + secret), 16)
    verifier = pow(g, x, big_n)
    small_b = secrets.randbits(1024)
    big_b = (k * verifier + pow(g, small_b, big_n)) % big_n
    u = calculate_u(big_a, big_b)
    shared = pow(big_a * pow(verifier, u, big_n), small_b, big_n)
    key = compute_hkdf(bytearray.fromhex(pad_hex(shared)), bytearray.fromhex(pad_hex(long_to_hex(u))))
    return {"SALT": salt, "SRP_B": long_to_hex(big_b)}, bytes(key)


def srp_sign_in() -> None:
    """USER_SRP_AUTH proves the password (see the module's docstring); idempotent."""
    global _installed
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import CognitoIdpBackend

    with _lock:
        if _installed:
            return
        _installed = True
    initiate_auth = CognitoIdpBackend.initiate_auth
    respond_to_auth_challenge = CognitoIdpBackend.respond_to_auth_challenge

    def initiate(self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]) -> dict[str, Any]:
        answer: dict[str, Any] = initiate_auth(self, client_id, auth_flow, auth_parameters)
        if auth_flow != "USER_SRP_AUTH" or answer.get("ChallengeName") != "PASSWORD_VERIFIER":
            return answer
        username, pool = self.sessions.pop(answer["Session"])
        user = self.admin_get_user(pool.id, username)
        half = _server_half(pool.id, user.username, user.password or "", auth_parameters["SRP_A"])
        if half is None:
            raise NotAuthorizedError("Incorrect username or password.")
        parameters, key = half
        secret_block = base64.standard_b64encode(secrets.token_bytes(64)).decode()
        self.sessions[secret_block] = (user.username, pool)  # moto finds the session by the secret block
        with _lock:
            _challenges[secret_block] = _Challenge(pool.id, user.username, key)
        answer["Session"] = secret_block
        answer["ChallengeParameters"].update(
            parameters, SECRET_BLOCK=secret_block, USERNAME=user.username, USER_ID_FOR_SRP=user.username
        )
        return answer

    def respond(
        self: Any, session: str, client_id: str, challenge_name: str, challenge_responses: dict[str, str]
    ) -> dict[str, Any]:
        if challenge_name == "PASSWORD_VERIFIER":
            secret_block = challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK") or ""
            with _lock:
                challenge = _challenges.pop(secret_block, None)
            if challenge is None or not challenge.verifies(challenge_responses, secret_block):
                self.sessions.pop(secret_block, None)
                raise NotAuthorizedError("Incorrect username or password.")
        answer: dict[str, Any] = respond_to_auth_challenge(
            self, session, client_id, challenge_name, challenge_responses
        )
        return answer

    CognitoIdpBackend.initiate_auth = initiate  # type: ignore[method-assign]
    CognitoIdpBackend.respond_to_auth_challenge = respond  # type: ignore[method-assign]
