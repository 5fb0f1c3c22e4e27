"""A stand-in for GitHub's REST API, for the delivery tests: Actions secrets of
repositories, environments and organizations, and GitHub App installation
tokens, written from GitHub's REST API documentation (docs.github.com/rest:
"Actions / Secrets", "Apps / Create an installation access token", "Rate
limits for the REST API", "Generating a JSON Web Token for a GitHub App").

Each repository, environment and organization holds an X25519 key pair. A
secret written with `PUT .../secrets/{name}` must be a libsodium sealed box to
the current public key, named by its `key_id`; the stand-in opens it with the
private key (PyNaCl, which wraps libsodium) so a test reads back the plaintext,
as GitHub's runners would see it.

Authentication: `Authorization: Bearer <token>` (or `token <token>`), a
fine-grained token made through the control API, or an installation token
bought with `POST /app/installations/{id}/access_tokens` and an App JWT whose
RS256 signature is checked against the App's public key, with its `iat`, `exp`
(at most 10 minutes ahead) and `iss` (app id or client id).

The API is served under /api/v3, as GitHub Enterprise Server serves it, so a
client must keep the path of its API root. The control API, under /_stand-in
(a path GitHub does not use), sets up repositories, organizations, tokens and
Apps, reads secrets back in plaintext, rotates a key, revokes installation
tokens, queues faults (any status, headers and body, for the next N matching
calls), sets a primary rate limit that bites (N calls per window, then 403
with x-ratelimit-remaining 0 until the reset), kills a process right after
the Nth call took effect (the crash tests) and lists the calls received.

Prints its port on the first line of stdout once listening, then serves until
stdin closes (the test process holds the other end of the pipe).
"""

import base64
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

API = "/api/v3"
CONTROL = "/_stand-in"
DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_MESSAGES = {
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    422: "Validation Failed",
    429: "Too Many Requests",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


DEFAULT_APP_PERMISSIONS = {
    "secrets": "write",
    "environments": "write",
    "organization_secrets": "write",
    "metadata": "read",
    "contents": "write",
    "issues": "write",
}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyHolder:
    """A repository, environment or organization: its key pair and secrets."""

    def __init__(self):
        self.secrets = {}
        self.rotate()

    def rotate(self):
        self.private_key = PrivateKey.generate()
        self.key_id = str(secrets.randbits(62))

    def public_key(self):
        return {
            "key_id": self.key_id,
            "key": base64.b64encode(bytes(self.private_key.public_key)).decode(),
        }


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.holders = {}  # "repos/o/r", "repos/o/r/environments/e", "orgs/o"
        self.tokens = {}  # token -> {"kind", "access", "write", "expires"}
        self.installation_permissions = []  # what each installation token was granted
        self.apps = {}  # app id -> {"client_id", "public_key", "installations", ...}
        self.faults = []
        self.calls = []
        self.used = 0
        # A primary rate limit that bites: {"limit", "window", "reset", "left"}.
        self.limit = None
        # Kill a process right after the Nth API call took effect: {"after", "pid"}.
        self.crash = None
        self.answered = 0


STATE = State()


def can_access(token: dict, holder: str) -> bool:
    """A token's access list names repositories (`owner/repo`), organizations
    (`org:name`) or everything (`*`)."""
    access = token["access"]
    if "*" in access:
        return True
    parts = holder.split("/")
    if parts[0] == "repos":
        return f"{parts[1]}/{parts[2]}" in access
    return f"org:{parts[1]}" in access


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    # -- plumbing ---------------------------------------------------------

    def body(self) -> dict:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def reply(self, status: int, body=None, headers=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        if payload:
            self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def rate_headers(self) -> dict:
        with STATE.lock:
            STATE.used += 1
            used = STATE.used
            limit = STATE.limit
            if limit is not None:
                return {
                    "x-ratelimit-limit": limit["limit"],
                    "x-ratelimit-remaining": limit["left"],
                    "x-ratelimit-reset": int(limit["reset"]),
                    "x-ratelimit-used": limit["limit"] - limit["left"],
                    "x-ratelimit-resource": "core",
                }
        return {
            "x-ratelimit-limit": RATE_LIMIT,
            "x-ratelimit-remaining": max(RATE_LIMIT - used, 1),
            "x-ratelimit-reset": int(time.time()) + 3600,
            "x-ratelimit-used": used,
            "x-ratelimit-resource": "core",
        }

    def rate_limited(self) -> bool:
        """GitHub's primary rate limit, when the test set one: each call takes one
        of `limit` per `window` seconds; past it, 403 with remaining 0 until the
        window's reset (whole seconds, as GitHub gives it)."""
        with STATE.lock:
            limit = STATE.limit
            if limit is None:
                return False
            now = time.time()
            if now >= limit["reset"]:
                limit["reset"] = float(int(now + limit["window"]) + 1)
                limit["left"] = limit["limit"]
            if limit["left"] > 0:
                limit["left"] -= 1
                return False
            limit["refused"] += 1
        self.error(403, "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.")
        return True

    def error(self, status: int, message=None, headers=None):
        self.api_reply(
            status,
            {"message": message or DEFAULT_MESSAGES.get(status, "Error"), "documentation_url": DOCS},
            headers,
        )

    def api_reply(self, status: int, body=None, headers=None):
        merged = self.rate_headers()
        merged.update(headers or {})
        self.record(status)
        if self.crashes_now():
            return
        self.reply(status, body, merged)

    def crashes_now(self) -> bool:
        """The test's crash point: the call took effect, the process under test
        dies (SIGKILL) and is never answered."""
        with STATE.lock:
            STATE.answered += 1
            crash = STATE.crash
            if crash is None or STATE.answered != crash["after"]:
                return False
            STATE.crash = None
        try:
            os.kill(crash["pid"], signal.SIGKILL)
        except OSError:
            pass
        self.close_connection = True
        return True

    def record(self, status: int):
        with STATE.lock:
            STATE.calls.append(
                {
                    "method": self.command,
                    "path": self.api_path,
                    "status": status,
                    "at": time.time(),
                    "auth": self.auth_kind,
                }
            )

    def segments(self, path: str):
        return [unquote(part) for part in path.strip("/").split("/")]

    # -- dispatch ---------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        path = self.path.split("?", 1)[0]
        if path.startswith(CONTROL + "/"):
            return self.control(path[len(CONTROL) :])
        self.auth_kind = "none"
        self.api_path = path[len(API) :] if path.startswith(API + "/") else path
        if not path.startswith(API + "/"):
            return self.error(404)
        request = self.body()
        if self.fault() or self.rate_limited():
            return
        if request is None:
            return self.error(400, "Problems parsing JSON")
        parts = self.segments(self.api_path)
        if parts[:2] == ["app", "installations"] and len(parts) == 4 and parts[3] == "access_tokens":
            if self.command != "POST":
                return self.error(404)
            return self.access_token(parts[2], request)
        if parts[:2] == ["app", "installations"] and len(parts) == 3 and self.command == "GET":
            return self.installation(parts[2])
        token = self.authenticate()
        if token is None:
            return
        holder, rest = self.holder_of(parts)
        if holder is None:
            return self.error(404)
        with STATE.lock:
            exists = holder in STATE.holders
        if not exists or not can_access(token, holder):
            return self.error(404)
        if rest == ["public-key"] and self.command == "GET":
            with STATE.lock:
                public_key = STATE.holders[holder].public_key()
            return self.api_reply(200, public_key)
        if len(rest) == 1 and self.command == "PUT":
            needed = "organization_secrets" if holder.startswith("orgs/") else "environments" if "/environments/" in holder else "secrets"
            if token["kind"] == "installation" and token["permissions"].get(needed) not in ("write", "admin"):
                return self.error(403, "Resource not accessible by integration")
            if not token["write"]:
                return self.error(403, "Resource not accessible by personal access token")
            return self.put_secret(holder, rest[0], request)
        if len(rest) == 1 and self.command == "GET":
            return self.get_secret(holder, rest[0])
        if len(rest) == 2 and rest[1] == "repositories" and holder.startswith("orgs/") and self.command == "GET":
            return self.selected_repositories(holder, rest[0])
        return self.error(404)

    def holder_of(self, parts):
        """The key holder a path names, and what follows `secrets/`."""
        if len(parts) >= 5 and parts[0] == "repos" and parts[3:5] == ["actions", "secrets"]:
            return f"repos/{parts[1]}/{parts[2]}", parts[5:]
        if len(parts) >= 6 and parts[0] == "repos" and parts[3] == "environments" and parts[5] == "secrets":
            return f"repos/{parts[1]}/{parts[2]}/environments/{parts[4]}", parts[6:]
        if len(parts) >= 4 and parts[0] == "orgs" and parts[2:4] == ["actions", "secrets"]:
            return f"orgs/{parts[1]}", parts[4:]
        return None, None

    def fault(self) -> bool:
        """Answers with the first queued fault that matches, if any."""
        with STATE.lock:
            for fault in STATE.faults:
                if fault["count"] <= 0:
                    continue
                if fault.get("method") and fault["method"] != self.command:
                    continue
                if fault.get("path") and fault["path"] not in self.api_path:
                    continue
                fault["count"] -= 1
                break
            else:
                return False
        if fault.get("body") is not None:
            self.api_reply(fault["status"], fault["body"], fault.get("headers"))
        else:
            self.error(fault["status"], fault.get("message"), fault.get("headers"))
        return True

    def bearer(self):
        header = self.headers.get("authorization") or ""
        for scheme in ("Bearer ", "bearer ", "token "):
            if header.startswith(scheme):
                return header[len(scheme) :].strip()
        return None

    def authenticate(self):
        value = self.bearer()
        with STATE.lock:
            token = STATE.tokens.get(value) if value else None
        if token is None or token.get("revoked") or token["expires"] < time.time():
            self.error(401)
            return None
        self.auth_kind = token["kind"]
        return token

    # -- the API ----------------------------------------------------------

    def installation(self, installation: str):
        """`GET /app/installations/{id}`, as the App: what it was granted."""
        self.auth_kind = "jwt"
        app, problem = self.verify_jwt(self.bearer())
        if app is None:
            return self.error(401, problem)
        if installation not in app["installations"]:
            return self.error(404)
        self.api_reply(200, {"id": int(installation), "app_id": app["id"], "permissions": app["permissions"]})

    def access_token(self, installation: str, request: dict):
        self.auth_kind = "jwt"
        app, problem = self.verify_jwt(self.bearer())
        if app is None:
            return self.error(401, problem)
        installation_access = app["installations"].get(installation)
        if installation_access is None:
            return self.error(404)
        granted = app["permissions"]
        asked = request.get("permissions")
        if asked is not None:
            rank = {"read": 1, "write": 2, "admin": 3}
            for name, level in asked.items():
                if rank.get(granted.get(name), 0) < rank.get(level, 9):
                    return self.error(422, "The permissions requested are not granted to this installation.")
            granted = dict(asked)
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = int(time.time()) + app["token_lifetime"]
        with STATE.lock:
            STATE.tokens[token] = {
                "kind": "installation",
                "access": installation_access,
                "write": True,
                "permissions": granted,
                "expires": expires,
                "app": app["id"],
            }
            app["tokens_issued"] += 1
            STATE.installation_permissions.append(granted)
        self.api_reply(
            201,
            {
                "token": token,
                "expires_at": iso(expires),
                "permissions": granted,
                "repository_selection": "selected",
            },
        )

    def verify_jwt(self, jwt):
        """The App a JWT authenticates, or why it does not."""
        if not jwt or jwt.count(".") != 2:
            return None, "A JSON web token could not be decoded"
        header_b64, claims_b64, signature_b64 = jwt.split(".")
        try:
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except ValueError:
            return None, "A JSON web token could not be decoded"
        if header.get("alg") != "RS256":
            return None, "A JSON web token could not be decoded"
        issuer = str(claims.get("iss"))
        with STATE.lock:
            app = next(
                (app for app in STATE.apps.values() if issuer in (str(app["id"]), app["client_id"])),
                None,
            )
        if app is None:
            return None, "Integration not found"
        try:
            app["public_key"].verify(
                signature,
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None, "A JSON web token could not be decoded"
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + 1:
            return None, "'Issued at' claim ('iat') must be an Integer representing a time in the past."
        if not isinstance(exp, int) or exp <= now:
            return None, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires."
        if exp > now + 600 + 1:
            return None, "'Expiration time' claim ('exp') is too far in the future."
        return app, None

    def put_secret(self, holder: str, name: str, request: dict):
        if not SECRET_NAME.match(name) or name.upper().startswith("GITHUB_"):
            return self.error(422, "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), may not start with a number or GITHUB_")
        encrypted, key_id = request.get("encrypted_value"), request.get("key_id")
        if not isinstance(encrypted, str) or not isinstance(key_id, str):
            return self.error(422, "Invalid request.\n\n\"encrypted_value\" and \"key_id\" are required.")
        visibility = request.get("visibility")
        if holder.startswith("orgs/"):
            if visibility not in ("all", "private", "selected"):
                return self.error(422, "Invalid request.\n\n\"visibility\" must be all, private or selected.")
            if visibility == "selected" and not isinstance(request.get("selected_repository_ids"), list):
                return self.error(422, "Invalid request.\n\n\"selected_repository_ids\" is required for selected visibility.")
        with STATE.lock:
            keys = STATE.holders[holder]
            if key_id != keys.key_id:
                stale = True
            else:
                stale = False
                private_key = keys.private_key
        if stale:
            return self.error(422, "Bad request: key_id is not the current key of this repository, environment or organization; fetch the public key again.")
        try:
            value = SealedBox(private_key).decrypt(base64.b64decode(encrypted, validate=True)).decode()
        except (CryptoError, ValueError):
            return self.error(422, "Bad request: encrypted_value is not a sealed box to the current public key.")
        now = time.time()
        upper = name.upper()
        with STATE.lock:
            existing = keys.secrets.get(upper)
            keys.secrets[upper] = {
                "value": value,
                "created_at": existing["created_at"] if existing else now,
                "updated_at": now,
                "visibility": visibility,
                "selected_repository_ids": request.get("selected_repository_ids") if visibility == "selected" else None,
                "key_id": key_id,
                "writes": (existing["writes"] if existing else 0) + 1,
            }
        self.api_reply(204 if existing else 201)

    def selected_repositories(self, holder: str, name: str):
        """`GET /orgs/{org}/actions/secrets/{name}/repositories`, paged as GitHub pages it."""
        query = dict(part.split("=", 1) for part in self.path.partition("?")[2].split("&") if "=" in part)
        per_page, page = min(int(query.get("per_page", 30)), 100), int(query.get("page", 1))
        with STATE.lock:
            stored = STATE.holders[holder].secrets.get(name.upper())
        if stored is None or stored["visibility"] != "selected":
            return self.error(404 if stored is None else 409)
        ids = stored["selected_repository_ids"] or []
        shown = ids[(page - 1) * per_page : page * per_page]
        self.api_reply(200, {"total_count": len(ids), "repositories": [{"id": i, "name": f"repo{i}"} for i in shown]})

    def read_selected(self, request):
        """Control: `GET /_stand-in/selected/orgs/<org>/<NAME>`, a secret's repositories."""
        parts = self.segments(self.path.split("?", 1)[0][len(CONTROL) :])
        with STATE.lock:
            stored = STATE.holders["/".join(parts[1:3])].secrets.get(parts[3].upper())
        if stored is None:
            return self.reply(404, {})
        self.reply(200, {"ids": stored.get("selected_repository_ids") or []})

    def select_repositories(self, request):
        """Control: an organization secret made `selected` in GitHub's UI, with its repositories."""
        holder, name = request["holder"], request["name"].upper()
        with STATE.lock:
            stored = STATE.holders[holder].secrets.setdefault(name, {
                "value": "", "created_at": time.time(), "updated_at": time.time(),
                "key_id": "", "writes": 0,
            })
            stored["visibility"] = request.get("visibility", "selected")
            stored["selected_repository_ids"] = request.get("ids", [])
        self.reply(200, {"selected": len(stored["selected_repository_ids"])})

    def get_secret(self, holder: str, name: str):
        with STATE.lock:
            stored = STATE.holders[holder].secrets.get(name.upper())
        if stored is None:
            return self.error(404)
        body = {
            "name": name.upper(),
            "created_at": iso(stored["created_at"]),
            "updated_at": iso(stored["updated_at"]),
        }
        if stored["visibility"]:
            body["visibility"] = stored["visibility"]
        self.api_reply(200, body)

    # -- the control API --------------------------------------------------

    def control(self, path: str):
        request = self.body() or {}
        parts = self.segments(path)
        handlers = {
            ("POST", "repos"): self.make_repository,
            ("POST", "orgs"): self.make_organization,
            ("POST", "tokens"): self.make_token,
            ("POST", "apps"): self.make_app,
            ("POST", "rotate-key"): self.rotate_key,
            ("POST", "revoke-installation-tokens"): self.revoke_installation_tokens,
            ("POST", "select-repositories"): self.select_repositories,
            ("POST", "faults"): self.add_fault,
            ("POST", "rate-limit"): self.set_rate_limit,
            ("POST", "crash-after"): self.set_crash,
            ("GET", "calls"): self.list_calls,
            ("GET", "selected"): self.read_selected,
        }
        if self.command == "GET" and parts[0] == "secrets":
            return self.read_secret(parts[1:])
        handler = handlers.get((self.command, parts[0]))
        if handler is None:
            return self.reply(404, {"error": f"no control endpoint {self.command} {path}"})
        handler(request)

    def make_repository(self, request):
        holder = f"repos/{request['owner']}/{request['repo']}"
        with STATE.lock:
            STATE.holders.setdefault(holder, KeyHolder())
            for environment in request.get("environments", []):
                STATE.holders.setdefault(f"{holder}/environments/{environment}", KeyHolder())
        self.reply(201, {"holder": holder})

    def make_organization(self, request):
        with STATE.lock:
            STATE.holders.setdefault(f"orgs/{request['org']}", KeyHolder())
        self.reply(201, {"holder": f"orgs/{request['org']}"})

    def make_token(self, request):
        token = "github_pat_" + secrets.token_urlsafe(40)
        with STATE.lock:
            STATE.tokens[token] = {
                "kind": "token",
                "access": request.get("access", ["*"]),
                "write": request.get("write", True),
                "expires": time.time() + request.get("lifetime", 86400),
            }
        self.reply(201, {"token": token})

    def make_app(self, request):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pkcs8 = request.get("key_format") == "pkcs8"
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        with STATE.lock:
            app_id = 100000 + len(STATE.apps) + 1
            installation_id = str(50000000 + app_id)
            STATE.apps[app_id] = {
                "id": app_id,
                "client_id": f"Iv23li{secrets.token_hex(7)}",
                "public_key": key.public_key(),
                "installations": {installation_id: request.get("access", ["*"])},
                "token_lifetime": request.get("token_lifetime", 3600),
                # What GitHub Apps are often granted beyond secrets: a token
                # bought without a permissions body carries all of it.
                "permissions": request.get("permissions", DEFAULT_APP_PERMISSIONS),
                "tokens_issued": 0,
            }
            client_id = STATE.apps[app_id]["client_id"]
        self.reply(
            201,
            {
                "app_id": app_id,
                "client_id": client_id,
                "installation_id": int(installation_id),
                "private_key": pem,
            },
        )

    def rotate_key(self, request):
        with STATE.lock:
            keys = STATE.holders[request["holder"]]
            keys.rotate()
            key_id = keys.key_id
        self.reply(200, {"key_id": key_id})

    def revoke_installation_tokens(self, request):
        with STATE.lock:
            revoked = 0
            for token in STATE.tokens.values():
                if token["kind"] == "installation" and not token.get("revoked"):
                    token["revoked"] = True
                    revoked += 1
        self.reply(200, {"revoked": revoked})

    def add_fault(self, request):
        fault = {
            "status": int(request["status"]),
            "count": int(request.get("count", 1)),
            "path": request.get("path"),
            "method": request.get("method"),
            "message": request.get("message"),
            "headers": {name: str(value) for name, value in request.get("headers", {}).items()},
            "body": request.get("body"),
        }
        with STATE.lock:
            STATE.faults.append(fault)
        self.reply(201, {"queued": fault["count"]})

    def set_rate_limit(self, request):
        with STATE.lock:
            if request.get("limit") is None:
                STATE.limit = None
                return self.reply(200, {"limit": None})
            window = float(request.get("window", 3600))
            STATE.limit = {
                "limit": int(request["limit"]),
                "left": int(request["limit"]),
                "window": window,
                "reset": float(int(time.time() + window) + 1),
                "refused": 0,
            }
        self.reply(200, {"limit": request["limit"]})

    def set_crash(self, request):
        """Kill `pid` right after the `after`-th API call from now on."""
        with STATE.lock:
            STATE.answered = 0
            STATE.crash = None if request.get("after") is None else {"after": int(request["after"]), "pid": int(request["pid"])}
        self.reply(200, {"crash": STATE.crash})

    def list_calls(self, request):
        with STATE.lock:
            calls = list(STATE.calls)
            permissions = list(STATE.installation_permissions)
            refused = STATE.limit["refused"] if STATE.limit else 0
        self.reply(200, {"calls": calls, "rate_limited": refused, "installation_permissions": permissions})

    def read_secret(self, parts):
        """`GET /_stand-in/secrets/<holder>/<NAME>`: the plaintext as GitHub's
        runners would get it."""
        holder, name = "/".join(parts[:-1]), parts[-1]
        with STATE.lock:
            keys = STATE.holders.get(holder)
            stored = dict(keys.secrets.get(name.upper()) or {}) if keys else {}
        if not stored:
            return self.reply(404, {"error": f"no secret {name} in {holder}"})
        stored["created_at"] = iso(stored["created_at"])
        stored["updated_at"] = iso(stored["updated_at"])
        self.reply(200, stored)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    try:
        sys.stdin.read()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
