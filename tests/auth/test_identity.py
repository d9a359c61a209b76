"""The identity core on SQLite and PostgreSQL: accounts, groups, keys, the policy, throttling, audit, migration."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from cubeport.auth.authenticator import Authenticator
from cubeport.auth.policy import Policy
from cubeport.auth.principal import ANONYMOUS, Principal
from cubeport.config import AuthSettings
from cubeport.db import Database
from cubeport.db.models import ApiKeyRecord, AuditRecord, UserRecord
from cubeport.errors import AuthenticationError, ConflictError, InputError, NotFoundError, ThrottledError


@pytest.fixture
def auth(database) -> Authenticator:
    return Authenticator(
        database,
        AuthSettings(max_failures=3, account_max_failures=4, address_max_failures=5, lockout_seconds=30),
    )


def test_accounts_store_argon2_hashes_and_check_passwords(auth, database):
    auth.directory.create_user("mia", password="correct horse battery")
    with database.session() as session:
        stored = session.get(UserRecord, "mia").password_hash
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert auth.sign_in("mia", "correct horse battery", "10.0.0.1").name == "mia"
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        auth.sign_in("mia", "wrong password!", "10.0.0.1")
    with pytest.raises(
        AuthenticationError, match="wrong user name or password"
    ):  # same answer for unknown users
        auth.sign_in("nobody", "correct horse battery", "10.0.0.1")
    with pytest.raises(InputError, match="at least 10"):
        auth.directory.create_user("leo", password="short")
    with pytest.raises(ConflictError):
        auth.directory.create_user("mia")
    with pytest.raises(InputError, match="not valid"):
        auth.directory.create_user("bad name;drop")
    auth.directory.update_user("mia", active=False)
    with pytest.raises(AuthenticationError):
        auth.sign_in("mia", "correct horse battery", "10.0.0.1")


def test_groups_projects_and_principals(auth):
    auth.directory.create_user("mia")
    auth.directory.create_group("syke")
    auth.directory.create_group("baltic-aims", kind="project", title="BalticAIMS")
    auth.directory.add_member("syke", "mia")
    auth.directory.add_member("baltic-aims", "mia")
    principal = auth.directory.principal("mia", "password")
    assert principal.groups == {"syke", "baltic-aims"} and principal.role == "viewer"
    assert [g.kind for g in auth.directory.groups()] == ["project", "group"]
    with pytest.raises(NotFoundError, match="cubeport groups create"):
        auth.directory.add_member("fmi", "mia")
    with pytest.raises(NotFoundError, match="cubeport users create"):
        auth.directory.add_member("syke", "ghost")
    auth.directory.remove_member("syke", "mia")
    assert auth.directory.principal("mia", "password").groups == {"baltic-aims"}


def test_api_keys_hashed_expiring_and_revocable(auth, database):
    auth.directory.create_user("bot")
    key, secret = auth.create_key("bot", expires_days=30, label="QGIS")
    with database.session() as session:
        record = session.get(ApiKeyRecord, key.id)
        assert (
            secret not in (record.secret_hash, record.id) and secret.split("_")[-1] not in record.secret_hash
        )
    assert auth.api_key(secret, "10.0.0.2").name == "bot"
    assert auth.bearer(secret, "10.0.0.2").via == "api-key"  # clients that only send bearer tokens
    with pytest.raises(AuthenticationError):
        auth.api_key(secret[:-1] + ("A" if secret[-1] != "A" else "B"), "10.0.0.2")  # wrong secret, right id
    with database.session() as session:
        session.execute(
            update(ApiKeyRecord)
            .where(ApiKeyRecord.id == key.id)
            .values(expires=datetime.now(UTC) - timedelta(seconds=1))
        )
    auth.forget_credentials()  # as if the few seconds a known key is cached had passed
    with pytest.raises(AuthenticationError, match="expired or revoked"):
        auth.api_key(secret, "10.0.0.2")
    other, other_secret = auth.create_key("bot")
    assert other.expires is None and auth.api_key(other_secret, None).name == "bot"
    auth.revoke_key(other.id)
    with pytest.raises(AuthenticationError):
        auth.api_key(other_secret, None)
    assert [k.status for k in auth.keys.list("bot")] == ["expired", "revoked"]
    events = [e.event for e in auth.audit.query(user="bot")]
    assert events.count("key-created") == 2 and "key-revoked" in events
    with pytest.raises(InputError):
        auth.create_key("bot", expires_days=0)


def test_policy_public_restricted_grants_owner_and_admin(database):
    policy = Policy(database)
    mia = Principal("mia", groups=frozenset({"syke"}), via="password")
    leo = Principal("leo", groups=frozenset({"fmi"}), via="password")
    editor = Principal("eva", role="editor", groups=frozenset({"baltic-aims"}), via="password")
    admin = Principal("root", role="admin", via="password")
    assert policy.allows(ANONYMOUS, "read", "cube", "chl")  # default: public
    assert not policy.allows(mia, "write", "cube", "chl")
    policy.set_access("cube", "chl", public=False, groups=["syke"], users=["leo"])
    assert not policy.allows(ANONYMOUS, "read", "cube", "chl")
    assert policy.allows(mia, "read", "cube", "chl") and policy.allows(leo, "read", "cube", "chl")
    assert not policy.allows(Principal("x", groups=frozenset({"fmi"})), "read", "cube", "chl")
    assert policy.allows(admin, "write", "cube", "chl")
    assert policy.visible(mia, "cube", ["chl", "sst"]) == ["chl", "sst"]
    assert policy.visible(ANONYMOUS, "cube", ["chl", "sst"]) == ["sst"]
    policy.set_access("collection", "lakes", public=True, owner="baltic-aims")
    assert policy.allows(editor, "write", "collection", "lakes")  # editor in the owning project
    assert not policy.allows(
        Principal("eve", role="viewer", groups=frozenset({"baltic-aims"})), "write", "collection", "lakes"
    )  # a viewer of the project may not write
    policy.grant("process", "ndvi", "group", "fmi", "write")
    assert not policy.allows(leo, "write", "process", "ndvi")  # write grant, but not an editor
    assert policy.allows(
        Principal("leo", role="editor", groups=frozenset({"fmi"})), "write", "process", "ndvi"
    )
    policy.revoke("cube", "chl", "user", "leo")
    assert not policy.allows(leo, "read", "cube", "chl")
    with pytest.raises(InputError, match="at least one group"):
        policy.set_access("cube", "sst", public=False)
    with pytest.raises(InputError, match="kind"):
        policy.set_access("table", "x", public=True)
    policy.forget("cube", "chl")
    assert policy.allows(ANONYMOUS, "read", "cube", "chl")
    restrictive = Policy(database, default_public=False)
    assert not restrictive.allows(ANONYMOUS, "read", "service", "new-service")


def test_owners_are_recorded_never_revoked_and_new_rules_come_with_their_resource(database):
    policy = Policy(database)
    eva = Principal("eva", role="editor", via="password")
    mia = Principal("mia", role="editor", groups=frozenset({"syke"}), via="password")
    assert policy.allows(ANONYMOUS, "read", "collection", "eva.notes")  # no rule yet: the default
    with database.engine.begin() as connection:  # as the transaction that creates the collection
        policy.restrict_new(connection, "collection", "eva.notes", owner_user="eva")
        policy.restrict_new(connection, "collection", "syke.sites", owner="syke")
    # not cached while there was no rule, so the new rule holds at once
    assert not policy.allows(ANONYMOUS, "read", "collection", "eva.notes")
    assert policy.allows(eva, "write", "collection", "eva.notes")
    assert policy.access("collection", "eva.notes").owner_user == "eva"
    for subject_type, subject, resource in (("user", "eva", "eva.notes"), ("group", "syke", "syke.sites")):
        with pytest.raises(InputError, match="an owner cannot be revoked"):
            policy.revoke("collection", resource, subject_type, subject)
    policy.grant("collection", "eva.notes", "user", "eva", "read")  # does not make the owner a reader
    policy.set_access("collection", "eva.notes", public=False, users=["eva"])
    policy.set_access("collection", "syke.sites", public=False, groups=[], owner="syke")
    assert policy.allows(eva, "write", "collection", "eva.notes")
    assert policy.allows(mia, "read", "collection", "syke.sites")  # the owning project reads, ungranted


def test_throttle_slows_repeated_failures_per_account_and_address(auth):
    auth.directory.create_user("mia", password="correct horse battery")
    auth.directory.create_user("leo", password="correct horse battery")
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            auth.sign_in("mia", "guess-guess-guess", "10.9.9.9")
    with pytest.raises(ThrottledError, match="account at this address") as throttled:  # even the right one
        auth.sign_in("mia", "correct horse battery", "10.9.9.9")
    assert 0 < throttled.value.retry_after <= 30
    assert auth.sign_in("mia", "correct horse battery", "10.0.0.1").name == "mia"  # mia elsewhere
    with pytest.raises(AuthenticationError):  # the fourth failure for mia, from anywhere
        auth.sign_in("mia", "guess-guess-guess", "10.0.0.1")
    with pytest.raises(ThrottledError, match="this account;"):
        auth.sign_in("mia", "correct horse battery", "10.0.0.2")
    for _ in range(2):  # another account at the same address: only the address's own limit (5) counts
        with pytest.raises(AuthenticationError):
            auth.sign_in("leo", "guess-guess-guess", "10.9.9.9")
    with pytest.raises(ThrottledError, match="this address"):
        auth.sign_in("leo", "correct horse battery", "10.9.9.9")
    for _ in range(3):  # API keys are throttled per key and address too
        with pytest.raises(AuthenticationError):
            auth.api_key("cpk_0123456789ab_" + "x" * 43, "10.7.7.7")
    with pytest.raises(ThrottledError):
        auth.api_key("cpk_0123456789ab_" + "y" * 43, "10.7.7.7")
    events = [e.event for e in auth.audit.query(limit=50)]
    assert events.count("sign-in-failed") == 6 and events.count("key-failed") == 3
    assert events.count("sign-in-throttled") == 4
    with auth.audit.db.session() as session:  # failures older than the window no longer count
        session.execute(update(AuditRecord).values(time=datetime.now(UTC) - timedelta(hours=1)))
    assert auth.sign_in("mia", "correct horse battery", "10.0.0.1").name == "mia"


def test_first_admin_is_created_once(auth):
    password = auth.ensure_admin()
    assert password and auth.sign_in("admin", password, None).is_admin
    assert auth.ensure_admin() is None


def test_migration_moves_cube_access_to_the_policy(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade("0001")
    with db.engine.begin() as connection:
        for cube, access in (("open", "public"), ("secret", "restricted")):
            connection.execute(
                text(
                    "INSERT INTO cubes (id, title, description, crs, west, south, east, north, time_steps, tags, themes,"
                    " attrs, access, created, updated) VALUES (:id, :id, '', 'EPSG:4326', 0, 0, 1, 1, 0, '[]', '[]',"
                    " '{}', :access, '2026-01-01', '2026-01-01')"
                ),
                {"id": cube, "access": access},
            )
        connection.execute(text("INSERT INTO cube_groups (cube_id, \"group\") VALUES ('secret', 'syke')"))
    db.upgrade()
    policy = Policy(db)
    assert policy.allows(ANONYMOUS, "read", "cube", "open")
    assert not policy.allows(ANONYMOUS, "read", "cube", "secret")
    assert policy.allows(Principal("mia", groups=frozenset({"syke"})), "read", "cube", "secret")
    with db.session() as session:
        assert session.scalars(select(UserRecord)).all() == []
    db.dispose()


def test_ttl_cache_entries_expire():
    import time

    from cubeport.memory_cache import TtlCache

    cache: TtlCache[str, int] = TtlCache(0.05, size=2)
    cache.put("a", 1)
    cache.put("b", 2, seconds=-1)  # e.g. a token that has already expired
    assert cache.get("a") == 1 and cache.get("b") is None
    time.sleep(0.06)
    assert cache.get("a") is None
    cache.put("c", 3)  # full (of expired entries): emptied first
    cache.put("d", 4)
    assert cache.get("c") == 3 and cache.get("d") == 4
    cache.put("e", 5)  # full again
    assert cache.get("c") is None and cache.get("e") == 5


def test_concurrent_creation_of_the_same_row_is_a_conflict_not_a_crash(database):
    from cubeport.db.models import ResourceAccessRecord

    with database.session() as session:
        session.add(ResourceAccessRecord(kind="cube", resource_id="x", public=True))
    with (
        pytest.raises(ConflictError, match="at the same time"),
        database.session() as session,  # as a second request that also found no row
    ):
        session.add(ResourceAccessRecord(kind="cube", resource_id="x", public=False))
