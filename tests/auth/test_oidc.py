"""OIDC against a real provider (npm oauth2-mock-server started by the tests): bearer-token validation,
claim mapping, key rotation, and the browser's authorization-code flow with PKCE."""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context


@pytest.fixture(scope="module")
def context(tmp_path_factory, data, oidc_provider):
    root = tmp_path_factory.mktemp("oidc")
    context = Context(
        load_settings(
            data_root=str(root),
            auth={
                "oidc": [
                    {
                        "name": "keycloak",
                        "issuer": oidc_provider.issuer,
                        "audience": ["cubeport"],
                        "client_id": "cubeport-web",
                        "role_map": {"cubeport-admin": "admin", "cubeport-editor": "editor"},
                        "jwks_min_refresh_seconds": 0,
                    }
                ]
            },
        )
    )
    context.ingestion([str(data / "cubes/ostia-sst-baltic-3steps.zarr")], "secret-sst")
    context.policy.set_access("cube", "secret-sst", public=False, groups=["syke"])
    yield context
    context.close()


@pytest.fixture
def client(context):
    with TestClient(
        create_app(context), base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        yield client


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**extra):
    return {"aud": "cubeport", "sub": "u-123", "preferred_username": "mia", "groups": ["/syke"], **extra}


def _me(client, token):
    return client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_valid_token_maps_user_roles_and_groups(client, oidc_provider):
    token = oidc_provider.token(**_claims(realm_access={"roles": ["offline_access", "cubeport-editor"]}))
    me = _me(client, token).json()
    assert me["name"] == "keycloak:mia" and me["via"] == "oidc" and me["groups"] == ["syke"]
    assert me["role"] == "editor"
    client_roles = oidc_provider.token(
        **_claims(resource_access={"cubeport-web": {"roles": ["cubeport-admin"]}})
    )
    assert _me(client, client_roles).json()["role"] == "admin"
    seen = client.get("/cubes", headers={"Authorization": f"Bearer {token}"}).json()["cubes"]
    assert [c["id"] for c in seen] == ["secret-sst"]
    no_record = client.post("/auth/keys", json={}, headers={"Authorization": f"Bearer {token}"})
    assert no_record.status_code == 400 and "sign in once in the browser" in no_record.json()["detail"]
    outsider = oidc_provider.token(**_claims(groups=["fmi"]))
    assert client.get("/cubes/secret-sst", headers={"Authorization": f"Bearer {outsider}"}).status_code == 404


def _forged(oidc_provider, untrusted_provider):
    """Every kind of bad token, each made for the reason its name gives."""
    valid = oidc_provider.token(**_claims())
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    jwks = httpx.get(f"{oidc_provider.issuer}/jwks").json()["keys"]
    public_pem = jwt.PyJWK(jwks[0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": jwks[0]["kid"]}).encode())
    hs_signing_input = f"{hs_header}.{payload}".encode()
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return {
        "expired": oidc_provider.token(expires_in=-300, **_claims()),
        "not yet valid": oidc_provider.token(**_claims(nbf=now + 600)),
        "wrong audience": oidc_provider.token(**_claims(aud="another-service")),
        "wrong issuer": oidc_provider.token(**_claims(iss="https://login.example.org/realms/x")),
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",
        "HS256 with the public key": f"{hs_header}.{payload}."
        + _b64(hmac.new(public_pem, hs_signing_input, hashlib.sha256).digest()),
        "tampered payload": f"{header}.{_b64(json.dumps({**claims, 'groups': ['admins']}).encode())}.{signature}",
        "unknown kid": jwt.encode(
            {**claims, "exp": now + 600},
            own_key,
            algorithm="RS256",
            headers={"kid": "not-a-key-of-the-provider"},
        ),
        "untrusted provider": untrusted_provider.token(**_claims()),
        "no expiry": oidc_provider.token(**_claims(exp=None)),
        "not a JWT": "abc.def",
    }


WHY = {
    "expired": "expired",
    "not yet valid": "not valid yet",
    "wrong audience": "audience",
    "wrong issuer": "issuer",
    "alg none": "'none' is not allowed",
    "HS256 with the public key": "'HS256' is not",
    "tampered payload": "signature",
    "unknown kid": "does not have",
    "untrusted provider": "issuer",
    "no expiry": "exp",
    "not a JWT": "well-formed",
}


def test_bad_tokens_get_401_problem_json(client, oidc_provider, untrusted_provider):
    for reason, token in _forged(oidc_provider, untrusted_provider).items():
        assert WHY[reason] in _me(client, token).json()["detail"], reason
        for path in ("/auth/me", "/cubes", "/cubes/secret-sst"):
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (reason, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["detail"], reason
    rejected = client.app.state.context.auth.audit.query(event="token-rejected", limit=100)
    assert len(rejected) >= 11


def test_unknown_kid_refreshes_the_keys(client, oidc_provider):
    assert _me(client, oidc_provider.token(**_claims())).status_code == 200  # keys cached
    new_kid = oidc_provider.rotate_key()
    token = oidc_provider.token(**_claims())
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    assert _me(client, token).json()["name"] == "keycloak:mia"


def test_authorization_code_flow_with_pkce(client, oidc_provider):
    oidc_provider.sign_in_as(preferred_username="ana", groups=["syke"], name="Ana Example")
    start = client.get("/auth/oidc/keycloak/login", params={"next": "/cubes"}, follow_redirects=False)
    assert start.status_code == 302
    authorize = urlsplit(start.headers["location"])
    query = parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}" == oidc_provider.issuer
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["cubeport-web"]
    assert len(query["code_challenge"][0]) == 43 and query["state"][0] and query["nonce"][0]
    # the provider signs the user in and sends the browser back with a code
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    callback = back.headers["location"]
    assert callback.startswith("https://testserver/auth/oidc/keycloak/callback?")
    with TestClient(
        client.app, base_url="https://testserver"
    ) as other_browser:  # login CSRF: not its sign-in
        assert other_browser.get(callback, follow_redirects=False).status_code == 401
    done = client.get(callback, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/cubes"
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    me = client.get("/auth/me").json()
    assert me["name"] == "keycloak:ana" and me["via"] == "session" and me["csrf_token"]
    assert [c["id"] for c in client.get("/cubes").json()["cubes"]] == ["secret-sst"]
    users = client.app.state.context.auth.directory.users()
    assert [u.provider for u in users if u.name == "keycloak:ana"] == ["keycloak"]
    # an API key made in this session carries the groups the provider asserted (for QGIS, notebooks)
    key = client.post(
        "/auth/keys", json={"label": "QGIS"}, headers={"X-CSRF-Token": me["csrf_token"]}
    ).json()["key"]
    with TestClient(client.app) as script:
        seen = script.get("/cubes", headers={"X-API-Key": key}).json()["cubes"]
        assert [c["id"] for c in seen] == ["secret-sst"]
    # a code and state work once; a made-up state never
    assert client.get(callback, follow_redirects=False).status_code == 401
    forged = callback.replace("state=", "state=x")
    assert client.get(forged, follow_redirects=False).status_code == 401
    # sign out: the session ends, the restricted cube disappears
    assert client.post("/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]}).status_code == 204
    assert client.get("/cubes").json()["cubes"] == []


def test_unknown_provider_and_unsafe_settings(client):
    assert client.get("/auth/oidc/nope/login", follow_redirects=False).status_code == 404
    from cubeport.errors import ConfigError

    with pytest.raises(ConfigError, match="not allowed"):
        load_settings(auth={"oidc": [{"name": "x", "issuer": "https://x", "algorithms": ["RS256", "HS256"]}]})


def test_unreachable_provider_is_a_503_not_a_crash(tmp_path):
    settings = load_settings(
        data_root=str(tmp_path), auth={"oidc": [{"name": "down", "issuer": "http://127.0.0.1:9"}]}
    )
    context = Context(settings)
    token = jwt.encode(
        {"iss": "http://127.0.0.1:9", "sub": "x", "aud": "cubeport", "exp": int(time.time()) + 60},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "k"},
    )
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        response = client.get("/cubes", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503 and "unreachable" in response.json()["detail"]
    context.close()


def test_a_token_cannot_take_another_accounts_name(client, context, oidc_provider):
    """Accounts are bound to the provider's `sub`: a token whose user name belongs to an account of another
    subject is refused, and a renamed user keeps their own account."""
    context.auth.directory.record_external("keycloak", "sub-ola", "ola", role="viewer")
    context.policy.grant("cube", "secret-sst", "user", "keycloak:ola")
    ola = oidc_provider.token(**_claims(sub="sub-ola", preferred_username="ola", groups=[]))
    assert _me(client, ola).json()["name"] == "keycloak:ola"
    assert client.get("/cubes/secret-sst", headers={"Authorization": f"Bearer {ola}"}).status_code == 200
    impostor = oidc_provider.token(**_claims(sub="sub-someone-else", preferred_username="ola", groups=[]))
    for path in ("/auth/me", "/cubes/secret-sst"):
        response = client.get(path, headers={"Authorization": f"Bearer {impostor}"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "another" in response.json()["detail"]
    renamed = oidc_provider.token(**_claims(sub="sub-ola", preferred_username="ola-new", groups=[]))
    assert _me(client, renamed).json()["name"] == "keycloak:ola"  # the account of the subject, not a new one
    # the browser sign-in binds the same way: the impostor gets no session, ola keeps her account
    for claims, status in (({"sub": "sub-someone-else"}, 409), ({"sub": "sub-ola"}, 303)):
        oidc_provider.sign_in_as(preferred_username="ola", groups=[], **claims)
        with TestClient(client.app, base_url="https://testserver") as browser:
            start = browser.get("/auth/oidc/keycloak/login", follow_redirects=False)
            back = httpx.get(start.headers["location"], follow_redirects=False)
            done = browser.get(back.headers["location"], follow_redirects=False)
            assert done.status_code == status, (claims, done.text)
    assert [u.name for u in context.auth.directory.users() if u.name.startswith("keycloak:ola")] == [
        "keycloak:ola"
    ]


def test_a_bearer_token_binds_its_account_name_to_its_subject(client, context, oidc_provider):
    """Neither subject ever signs in in the browser: the first token's use binds `keycloak:zed` to its
    (provider, sub), so a token of another subject with the same user name is a 401 saying so, not the
    same account (which read what the first owned), and the first keeps its account."""
    context.policy.grant("cube", "secret-sst", "user", "keycloak:zed")
    first = oidc_provider.token(**_claims(sub="sub-zed-1", preferred_username="zed", groups=[]))
    second = oidc_provider.token(**_claims(sub="sub-zed-2", preferred_username="zed", groups=[]))
    assert _me(client, first).json()["name"] == "keycloak:zed"
    for path in ("/auth/me", "/cubes/secret-sst"):
        response = client.get(path, headers={"Authorization": f"Bearer {second}"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "bound to another keycloak identity" in response.json()["detail"], response.json()
    assert client.get("/cubes/secret-sst", headers={"Authorization": f"Bearer {first}"}).status_code == 200
    again = oidc_provider.token(**_claims(sub="sub-zed-1", preferred_username="zed", groups=[]))  # uncached
    assert _me(client, again).json()["name"] == "keycloak:zed"
    bound = [u for u in context.auth.directory.users() if u.name == "keycloak:zed"]
    assert [(u.provider, u.last_login) for u in bound] == [("keycloak", None)]  # recorded, never signed in
    keys = client.post("/auth/keys", json={}, headers={"Authorization": f"Bearer {first}"})
    assert keys.status_code == 400, keys.text  # role and groups are recorded at a browser sign-in
    # the browser sign-in finds the same record: the second subject gets none, the first signs in to it
    for sub, status in (("sub-zed-2", 409), ("sub-zed-1", 303)):
        oidc_provider.sign_in_as(sub=sub, preferred_username="zed", groups=[])
        with TestClient(client.app, base_url="https://testserver") as browser:
            start = browser.get("/auth/oidc/keycloak/login", follow_redirects=False)
            back = httpx.get(start.headers["location"], follow_redirects=False)
            done = browser.get(back.headers["location"], follow_redirects=False)
            assert done.status_code == status, (sub, done.text)
    keys = client.post("/auth/keys", json={}, headers={"Authorization": f"Bearer {first}"})
    assert keys.status_code == 201, keys.text


def test_provider_roles_grant_nothing_without_a_role_map(tmp_path, client, oidc_provider):
    """A provider role literally called `admin` is not a Cubeport role: only the role map grants roles."""
    admin_role = oidc_provider.token(
        **_claims(sub="sub-adm", preferred_username="adm", realm_access={"roles": ["admin", "editor"]})
    )
    assert (
        _me(client, admin_role).json()["role"] == "viewer"
    )  # a map is configured, these roles are not in it
    unmapped = Context(
        load_settings(
            data_root=str(tmp_path),
            auth={
                "oidc": [{"name": "keycloak", "issuer": oidc_provider.issuer, "client_id": "cubeport-web"}]
            },
        )
    )
    with TestClient(create_app(unmapped), raise_server_exceptions=False) as plain:
        assert _me(plain, admin_role).json()["role"] == "viewer"
        assert plain.get("/admin/users", headers={"Authorization": f"Bearer {admin_role}"}).status_code == 403
    unmapped.close()
