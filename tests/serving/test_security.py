import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")

from keras_qa.serving.requests import RequestError  # noqa: E402
from keras_qa.serving.security import LOOPBACK_HOSTS, Access, host_name, is_loopback  # noqa: E402

JSON = {"content-type": "application/json", "host": "127.0.0.1:8000"}


def status_of(check, headers):
    try:
        check(headers)
    except RequestError as error:
        return error.status
    return 200


@pytest.mark.parametrize(
    "host, name",
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("LocalHost", "localhost"),
        ("::1", "::1"),
    ],
)
def test_host_names_lose_their_port(host, name):
    assert host_name(host) == name


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "example.com"]))


def test_by_default_only_loopback_hosts_are_answered():
    access = Access()
    assert access.allowed_hosts == LOOPBACK_HOSTS
    for host in ("127.0.0.1:8000", "localhost:1", "[::1]:8000"):
        assert status_of(access.check_host, {"host": host}) == 200
    for host in ("evil.example", "evil.example:8000", ""):
        assert status_of(access.check_host, {"host": host}) == 400
    assert status_of(Access(allowed_hosts=None).check_host, {"host": "evil.example"}) == 200
    assert status_of(Access(allowed_hosts=("qa.lan",)).check_host, {"host": "qa.lan:80"}) == 200


def test_api_calls_must_be_json_from_this_origin_or_an_allowed_one():
    access = Access()
    assert status_of(access.check_api_call, JSON) == 200
    assert (
        status_of(access.check_api_call, JSON | {"content-type": "application/json; charset=utf-8"})
        == 200
    )
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        assert status_of(access.check_api_call, JSON | {"content-type": content_type}) == 415
    assert status_of(access.check_api_call, JSON | {"origin": "http://127.0.0.1:8000"}) == 200
    assert status_of(access.check_api_call, JSON | {"origin": "http://evil.example"}) == 403
    allowed = Access(cors_origins=("https://app.example",))
    assert status_of(allowed.check_api_call, JSON | {"origin": "https://app.example"}) == 200


def test_an_api_key_must_come_as_a_bearer_token():
    access = Access(api_key="s3cret")
    assert status_of(access.check_api_call, JSON) == 401
    for wrong in ("Bearer nope", "Basic s3cret", "s3cret", "Bearer s3cret2"):
        assert status_of(access.check_api_call, JSON | {"authorization": wrong}) == 401
    assert status_of(access.check_api_call, JSON | {"authorization": "Bearer s3cret"}) == 200
