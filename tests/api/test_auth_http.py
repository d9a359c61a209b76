"""Sign-in over HTTP: the login form and its cookie, CSRF on cookie writes, brute force, API keys, admin API."""

import pytest
from fastapi.testclient import TestClient

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context

PASSWORD = "a long enough password"


@pytest.fixture
def context(tmp_path, data):
    context = Context(
        load_settings(data_root=str(tmp_path / "root"), auth={"admin_password": "admin password 1"})
    )
    context.ingestion([str(data / "cubes/ostia-sst-baltic-3steps.zarr")], "sst")
    context.policy.set_access("cube", "sst", public=False, groups=["syke"])
    context.policy.grant("cube", "sst", "group", "syke", "write")
    context.auth.directory.create_user("mia", role="editor", password=PASSWORD)
    context.auth.directory.create_group("syke")
    context.auth.directory.add_member("syke", "mia")
    yield context
    context.close()


@pytest.fixture
def browser(context):
    """A browser on https://testserver (so that Secure cookies are kept), sending JSON and HTML."""
    with TestClient(
        create_app(context), base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        yield client


def _sign_in(browser, user="mia", password=PASSWORD, headers=None, **kwargs):
    return browser.post(
        "/auth/login",
        data={"username": user, "password": password, **kwargs},
        headers=headers,
        follow_redirects=False,
    )


def test_login_form_sets_a_safe_session_cookie_and_logout_ends_it(browser):
    page = browser.get("/auth/login?next=/cubes")
    assert page.status_code == 200 and 'name="password"' in page.text and 'value="/cubes"' in page.text
    wrong = browser.post(
        "/auth/login",
        data={"username": "mia", "password": "not the password"},
        headers={"Accept": "text/html"},
    )
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text and "<form" in wrong.text
    assert browser.get("/cubes/sst").status_code == 404
    signed_in = _sign_in(browser, next="/cubes")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/cubes"
    cookie = signed_in.headers["set-cookie"].lower()
    assert cookie.startswith("cubeport_session=") and "httponly" in cookie and "secure" in cookie
    assert "samesite=lax" in cookie
    assert browser.get("/cubes/sst").status_code == 200
    me = browser.get("/auth/me").json()
    assert me["name"] == "mia" and me["via"] == "session" and me["csrf_token"]
    assert browser.post("/auth/logout").status_code == 403  # a cookie write without the CSRF token
    assert browser.post("/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]}).status_code == 204
    assert browser.get("/auth/me").json()["signed_in"] is False
    assert browser.get("/cubes/sst").status_code == 404


def test_no_open_redirect_and_no_cross_site_login(browser):
    assert _sign_in(browser, next="//evil.example/x").headers["location"] == "/"
    assert _sign_in(browser, next="https://evil.example/").headers["location"] == "/"
    cross_site = browser.post(
        "/auth/login",
        data={"username": "mia", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403


def test_cookie_writes_need_the_csrf_token_from_this_site(browser):
    _sign_in(browser)
    token = browser.get("/auth/me").json()["csrf_token"]
    edit = {"title": "Edited SST"}
    assert browser.patch("/cubes/sst", json=edit).status_code == 403
    assert browser.patch("/cubes/sst", json=edit, headers={"X-CSRF-Token": "guess"}).status_code == 403
    cross = browser.patch(
        "/cubes/sst", json=edit, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    for odd in (
        {"X-CSRF-Token": token, "Origin": "http://[x"},
        {"X-CSRF-Token": "t\u00e4".encode("latin-1")},
    ):  # malformed: 403, not 500
        assert browser.patch("/cubes/sst", json=edit, headers=odd).status_code == 403
    assert browser.get("/cubes/sst").json()["title"] != "Edited SST"  # nothing written
    done = browser.patch(
        "/cubes/sst", json=edit, headers={"X-CSRF-Token": token, "Origin": "https://testserver"}
    )
    assert done.status_code == 200 and done.json()["title"] == "Edited SST"


def test_brute_force_on_the_login_is_slowed_and_logged(browser, context):
    for _ in range(5):
        assert _sign_in(browser, password="guess guess guess").status_code == 401
    throttled = _sign_in(browser)  # even the right password waits now
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert throttled.headers["content-type"].startswith("application/problem+json")
    assert "try again in" in throttled.json()["detail"]
    other_account = _sign_in(browser, user="someone", password="guess guess guess")
    assert other_account.status_code == 401  # another account at this address: not locked out by mia's
    admin_key = context.auth.create_key("admin")[1]
    assert browser.get("/cubes", headers={"X-API-Key": "cpk_0123456789ab_" + "x" * 43}).status_code == 401
    assert (
        browser.get("/cubes", headers={"X-API-Key": admin_key}).status_code == 200
    )  # a valid key still works
    with TestClient(browser.app, client=("10.20.30.40", 5000)) as elsewhere:  # the admin, at another address

        def audit(event: str) -> list[dict]:
            answer = elsewhere.get("/admin/audit", params={"event": event}, headers={"X-API-Key": admin_key})
            return answer.json()["events"]

        failed = audit("sign-in-failed")
        assert len(failed) == 6 and {e["user"] for e in failed} == {"mia", "someone"}
        assert failed[0]["address"] == "testclient"
        assert len(audit("sign-in-throttled")) == 1  # mia


def test_api_keys_over_http(browser, context):
    _sign_in(browser)
    csrf = {"X-CSRF-Token": browser.get("/auth/me").json()["csrf_token"]}
    created = browser.post("/auth/keys", json={"label": "QGIS", "expires_days": 90}, headers=csrf)
    assert created.status_code == 201 and created.json()["key"].startswith("cpk_")
    key, key_id = created.json()["key"], created.json()["id"]
    listed = browser.get("/auth/keys").json()["keys"]
    assert (
        [k["id"] for k in listed] == [key_id] and key not in str(listed) and listed[0]["status"] == "active"
    )
    browser.cookies.clear()
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert browser.get("/cubes/sst", headers=headers).status_code == 200
    assert browser.get("/cubes/sst", headers={"Authorization": f"Basic {key}"}).status_code == 401
    assert browser.delete(f"/auth/keys/{key_id}", headers={"X-API-Key": key}).status_code == 204
    revoked = browser.get("/cubes/sst", headers={"X-API-Key": key})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert browser.get("/auth/keys").status_code == 401  # anonymous


def test_admin_api_manages_users_groups_and_access(browser, context):
    admin = {"X-API-Key": context.auth.create_key("admin")[1]}
    mia = {"X-API-Key": context.auth.create_key("mia")[1]}
    assert browser.get("/admin/users").status_code == 401
    assert browser.get("/admin/users", headers=mia).status_code == 403
    assert (
        browser.post("/admin/users", json={"name": "leo", "password": PASSWORD}, headers=admin).status_code
        == 201
    )
    assert browser.post("/admin/users", json={"name": "leo"}, headers=admin).status_code == 409
    assert browser.post("/admin/users", json={"name": "x y"}, headers=admin).status_code == 400
    assert (
        browser.post("/admin/groups", json={"name": "fmi", "kind": "project"}, headers=admin).status_code
        == 201
    )
    assert browser.put("/admin/groups/fmi/members/leo", headers=admin).json()["members"] == ["leo"]
    leo = {"X-API-Key": context.auth.create_key("leo")[1]}
    assert browser.get("/cubes/sst", headers=leo).status_code == 404
    access = browser.put(
        "/admin/access/cube/sst", json={"access": "restricted", "groups": ["syke", "fmi"]}, headers=admin
    ).json()
    assert access["groups"] == ["fmi", "syke"]
    assert browser.get("/cubes/sst", headers=leo).status_code == 200
    assert (
        browser.put("/admin/access/cube/sst", json={"access": "public"}, headers=admin).json()["access"]
        == "public"
    )
    assert browser.get("/cubes/sst").status_code == 200
    assert browser.put("/admin/access/table/x", json={"access": "public"}, headers=admin).status_code == 422
    assert browser.patch("/admin/users/leo", json={"active": False}, headers=admin).json()["active"] is False
    assert browser.get("/cubes", headers=leo).status_code == 401  # a disabled user's keys stop working
    changes = browser.get("/admin/audit", params={"event": "access-changed"}, headers=admin).json()["events"]
    assert any(e["resource_id"] == "sst" and "public" in e["detail"] for e in changes)


def _throttle_context(root, **auth):
    context = Context(load_settings(data_root=str(root), auth={"max_failures": 2, **auth}))
    for name in ("mia", "leo", "ana"):
        context.auth.directory.create_user(name, password=PASSWORD)
    return context


def test_failures_for_one_account_do_not_lock_out_another_at_the_same_address(tmp_path):
    """Failures count per account and address; the address alone only past its own, higher limit."""
    context = _throttle_context(tmp_path, address_max_failures=4)
    with TestClient(create_app(context), base_url="https://testserver") as browser:
        for _ in range(2):
            assert _sign_in(browser, password="guess guess guess").status_code == 401
        assert _sign_in(browser).status_code == 429  # mia, from here
        assert _sign_in(browser, user="leo").status_code == 303  # leo, from the same address
        for user in ("leo", "ana"):
            assert _sign_in(browser, user=user, password="guess guess guess").status_code == 401
        spraying = _sign_in(browser, user="ana")  # four failures from this address, for any account
        assert spraying.status_code == 429 and "address" in spraying.json()["detail"]
    context.close()


def test_clients_behind_a_trusted_proxy_are_throttled_apart(tmp_path):
    """With `auth.trusted_proxy_header`, the client is the address the proxy appended: two clients behind
    one proxy are throttled separately, and what a client puts in the header itself is not believed."""
    context = _throttle_context(tmp_path, trusted_proxy_header="X-Forwarded-For")
    with TestClient(create_app(context), base_url="https://testserver") as proxy:
        for spoofed in ("10.0.0.1", "10.0.0.2"):  # the client's own header value, then the proxy's hop
            one = {"X-Forwarded-For": f"{spoofed}, 203.0.113.1"}
            assert _sign_in(proxy, password="guess guess guess", headers=one).status_code == 401
        assert _sign_in(proxy, headers=one).status_code == 429
        other = {"X-Forwarded-For": "203.0.113.2"}
        assert _sign_in(proxy, headers=other).status_code == 303
    failed = context.auth.audit.query(event="sign-in-failed")
    assert {e.address for e in failed} == {"203.0.113.1"}
    context.close()


def test_without_a_trusted_proxy_header_a_forwarded_header_is_ignored(tmp_path):
    context = _throttle_context(tmp_path)
    with TestClient(create_app(context), base_url="https://testserver") as browser:
        for n in range(2):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert _sign_in(browser, password="guess guess guess", headers=spoofed).status_code == 401
        assert _sign_in(browser, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 429
    assert {e.address for e in context.auth.audit.query(event="sign-in-failed")} == {"testclient"}
    context.close()
