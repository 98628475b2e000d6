"""The one confinement rule of provider reads (cnm_ingest.transfer.confine), the address rule, the deadline arithmetic
and the checksum form rule: pure functions, no network (a resolver is a stub here)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket

import pytest

from cnm_ingest.cnm import checksum
from cnm_ingest.errors import (
    AddressNotAllowedError,
    CnmValidationError,
    ConfigurationError,
    ConnectionTimeoutError,
    TransferError,
    error_code_for,
)
from cnm_ingest.transfer import confine

HTTPS = {"id": "P", "protocol": "https", "host": "files.provider.test", "allowed_prefixes": ["provider-a"]}
SFTP = {"id": "S", "protocol": "sftp", "host": "sftp.provider.test", "port": 2222, "allowed_prefixes": ["data"]}
S3 = {"id": "B", "protocol": "s3", "host": "provider-bucket", "allowed_prefixes": ["in"]}


@pytest.mark.parametrize(
    "uri, path",
    [
        ("https://files.provider.test/provider-a/x.nc", "/provider-a/x.nc"),
        ("HTTPS://FILES.Provider.TEST./provider-a/x.nc", "/provider-a/x.nc"),  # scheme and host case, trailing dot
        ("https://files.provider.test:443/provider-a/x.nc", "/provider-a/x.nc"),  # the default port written out
        ("https://files.provider.test:0443/provider-a/x.nc", "/provider-a/x.nc"),
        ("https://files.provider.test/provider-a/a%20b%C3%A9.nc", "/provider-a/a bé.nc"),
        ("https://files.provider.test/provider-a/100%25.nc", "/provider-a/100%.nc"),
        ("https://files.provider.test/provider-a/sub/x;v=1.nc", "/provider-a/sub/x;v=1.nc"),
    ],
)
def test_a_uri_on_the_providers_host_and_prefix_is_accepted(uri, path):
    source = confine.check(uri, HTTPS)
    assert (source.scheme, source.host, source.port, source.path) == ("https", "files.provider.test", 443, path)
    assert confine.check(f"https://files.provider.test{source.target}", HTTPS).path == path  # the target is canonical


HOSTILE_HTTP = {
    "another prefix": "https://files.provider.test/provider-b/secret.bin",
    "prefix look-alike": "https://files.provider.test/provider-a-other/x",
    "the prefix itself": "https://files.provider.test/provider-a",
    "dot-dot": "https://files.provider.test/provider-a/../provider-b/secret.bin",
    "encoded dot-dot": "https://files.provider.test/provider-a/%2e%2e/provider-b/secret.bin",
    "upper encoded dot-dot": "https://files.provider.test/provider-a/%2E%2E/provider-b/secret.bin",
    "double encoded dot-dot": "https://files.provider.test/provider-a/%252e%252e/provider-b/secret.bin",
    "dot-dot with a parameter": "https://files.provider.test/provider-a/..;/provider-b/secret.bin",
    "dot segment": "https://files.provider.test/provider-a/./x",
    "double slash": "https://files.provider.test//provider-a/x",
    "trailing slash": "https://files.provider.test/provider-a/",
    "encoded slash": "https://files.provider.test/provider-a%2F..%2Fprovider-b/secret.bin",
    "encoded backslash": "https://files.provider.test/provider-a/..%5Cprovider-b",
    "backslash": "https://files.provider.test/provider-a\\..\\provider-b\\secret.bin",
    "NUL": "https://files.provider.test/provider-a/x%00.nc",
    "CRLF injection": "https://files.provider.test/provider-a/x%0d%0aHost:%20evil",
    "raw space": "https://files.provider.test/provider-a/x y",
    "query": "https://files.provider.test/provider-a/get?file=../provider-b/secret.bin",
    "empty query": "https://files.provider.test/provider-a/x?",
    "fragment": "https://files.provider.test/provider-a/x.nc#../../provider-b",
    "not UTF-8": "https://files.provider.test/provider-a/%ff.nc",
    "plain http (downgrade)": "http://files.provider.test/provider-a/x.nc",
    "sftp on an https provider": "sftp://files.provider.test/provider-a/x.nc",
    "s3 on an https provider": "s3://files.provider.test/provider-a/x.nc",
    "file": "file:///provider-a/x.nc",
    "ftp": "ftp://files.provider.test/provider-a/x.nc",
    "no scheme separator": "https:files.provider.test/provider-a/x.nc",
    "other host": "https://evil.test/provider-a/x.nc",
    "host suffix": "https://files.provider.test.evil.test/provider-a/x.nc",
    "user info": "https://user:pw@files.provider.test/provider-a/x.nc",
    "user info spoof": "https://files.provider.test@evil.test/provider-a/x.nc",
    "empty user info": "https://@files.provider.test/provider-a/x.nc",
    "other port": "https://files.provider.test:8443/provider-a/x.nc",
    "port 0": "https://files.provider.test:0/provider-a/x.nc",
    "port out of range": "https://files.provider.test:65536/provider-a/x.nc",
    "port not a number": "https://files.provider.test:x/provider-a/x.nc",
    "no host": "https:///provider-a/x.nc",
    "IDNA look-alike": "https://fіles.provider.test/provider-a/x.nc",  # Cyrillic i
    "full-width host": "https://ｆｉｌｅｓ.provider.test/provider-a/x.nc",
    "IPv6 literal": "https://[::1]/provider-a/x.nc",
    "IPv6 zone": "https://[fe80::1%25eth0]/provider-a/x.nc",
    "decimal IP": "https://2130706433/provider-a/x.nc",
    "octal IP": "https://0177.0.0.1/provider-a/x.nc",
    "hex IP": "https://0x7f000001/provider-a/x.nc",
    "short IP": "https://127.1/provider-a/x.nc",
    "not a string": None,
    "empty": "",
}


@pytest.mark.parametrize("case", list(HOSTILE_HTTP))
def test_every_other_uri_is_a_validation_error_with_the_reason(case):
    with pytest.raises(CnmValidationError) as err:
        confine.check(HOSTILE_HTTP[case], HTTPS)
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert "is refused: " in str(err.value) and err.value.path == "$.product.files[].uri"
    assert "pw@" not in str(err.value) and "file=" not in str(err.value)  # user info and query are not quoted


@pytest.mark.parametrize(
    "uri, ok",
    [
        ("sftp://sftp.provider.test:2222/data/x.nc", True),
        ("SFTP://sftp.provider.test:2222/data/sub/x.nc", True),
        ("sftp://sftp.provider.test/data/x.nc", False),  # port 22, not the provider's 2222
        ("sftp://sftp.provider.test:22/data/x.nc", False),
        ("sftp://sftp.provider.test:2222/other/x.nc", False),
        ("sftp://sftp.provider.test:2222/data/../other/x.nc", False),
        ("sftp://sftp.provider.test:2222/data/%2e%2e/other/x.nc", False),
        ("sftp://alice:s3cret@sftp.provider.test:2222/data/x.nc", False),
        ("http://sftp.provider.test:2222/data/x.nc", False),  # an sftp provider's password never goes as HTTP Basic
        ("https://sftp.provider.test:2222/data/x.nc", False),
    ],
)
def test_sftp_uris(uri, ok):
    if ok:
        assert confine.check(uri, SFTP).path.startswith("/data/")
    else:
        with pytest.raises(CnmValidationError):
            confine.check(uri, SFTP)


@pytest.mark.parametrize(
    "uri, ok",
    [
        ("s3://provider-bucket/in/x.nc", True),
        ("S3://provider-bucket/in/a#b?c%41", True),  # literal keys, as S3 names objects
        ("s3://provider-bucket/in//double", True),
        ("s3://provider-bucket/out/x.nc", False),
        ("s3://provider-bucket/in/../out/x.nc", False),
        ("s3://other-bucket/in/x.nc", False),
        ("https://provider-bucket/in/x.nc", False),  # an s3 provider is read over s3 only
        ("http://provider-bucket.s3.amazonaws.com/in/x.nc", False),
    ],
)
def test_s3_uris(uri, ok):
    if ok:
        assert confine.check(uri, S3).host == "provider-bucket"
    else:
        with pytest.raises(CnmValidationError):
            confine.check(uri, S3)


def test_the_declared_protocol_defaults_to_s3():
    assert confine.check("s3://b/k", {"host": "b"}).scheme == "s3"
    with pytest.raises(CnmValidationError, match="declares protocol 's3'"):
        confine.check("https://b/k", {"host": "b"})


@pytest.mark.parametrize(
    "change",
    [
        {"protocol": "ftp"},
        {"host": None},
        {"host": "2130706433"},
        {"host": "ｆiles.test"},
        {"host": "a..b"},
        {"port": 0},
        {"port": 70000},
        {"port": "443"},
        {"port": True},
        {"allowed_prefixes": "provider-a"},
        {"allowed_prefixes": ["a/../b"]},
        {"allowed_networks": "10.0.0.0/8"},
        {"allowed_networks": ["10.0.0.1/8"]},  # host bits set: a typo, not a network
        {"allowed_networks": ["not a cidr"]},
        {"allowed_networks": ["169.254.169.254/32"]},
        {"allowed_networks": ["0.0.0.0/0"]},
        {"allowed_networks": ["fe80::/64"]},
        {"allowed_networks": ["fd00:ec2::254/128"]},
        {"protocol": "http", "credentials_secret_arn": "arn:aws:secretsmanager:us-west-2:1:secret:p"},
    ],
)
def test_an_unusable_provider_is_a_configuration_error(change):
    with pytest.raises(ConfigurationError):
        confine.check("https://files.provider.test/provider-a/x.nc", {**HTTPS, **change})


def test_ip_literal_hosts_compare_in_canonical_form():
    provider = {"id": "V6", "protocol": "http", "host": "[0:0:0:0:0:0:0:1]"}
    assert confine.check("http://[::1]/x", provider).host == "::1"
    assert confine.check("http://[::1]:80/x", provider).authority == "[::1]"
    with pytest.raises(CnmValidationError):
        confine.check("http://[::ffff:127.0.0.1]/x", provider)
    local = {"protocol": "http", "host": "127.0.0.1", "port": 8080}
    assert confine.check("http://127.0.0.1:8080/x", local).port == 8080


def test_redact_hides_user_info_query_and_fragment():
    shown = confine.redact("https://alice:s3cret@h/p?token=abc#frag")
    assert "s3cret" not in shown and "token" not in shown and "frag" not in shown and "h/p" in shown


# --- addresses -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip, why",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local (never allowed)"),  # instance metadata
        ("169.254.170.2", "link-local (never allowed)"),  # ECS task metadata
        ("fd00:ec2::254", "link-local (never allowed)"),  # IMDS over IPv6
        ("fe80::1", "link-local (never allowed)"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "private"),
        ("192.0.2.1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local (never allowed)"),
        ("64:ff9b::a9fe:a9fe", "link-local (never allowed)"),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_rule(ip, why):
    assert confine.address_allowed(ipaddress.ip_address(ip), []) == why


def test_allowed_networks_admit_what_they_name_and_never_link_local():
    networks = confine.allowed_networks({"allowed_networks": ["127.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10"]})
    for ip in ("127.0.0.1", "::ffff:127.0.0.1", "10.9.9.9", "100.64.0.5", "8.8.8.8"):
        assert confine.address_allowed(ipaddress.ip_address(ip), networks) is None
    for ip in ("192.168.1.1", "169.254.169.254", "::1"):
        assert confine.address_allowed(ipaddress.ip_address(ip), networks) is not None


class Resolver:
    """A getaddrinfo stub: the answers it gives, in turn, and the lookups it saw."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers, self.lookups = list(answers), []

    def __call__(self, host, port, *args, **kwargs):
        self.lookups.append(host)
        ips = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        family = lambda ip: socket.AF_INET6 if ":" in ip else socket.AF_INET  # noqa: E731
        return [(family(ip), socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]


@pytest.mark.parametrize(
    "answer, networks, ok",
    [
        (["8.8.8.8"], [], True),
        (["127.0.0.1"], [], False),
        (["8.8.8.8", "10.0.0.1"], [], False),  # one bad answer refuses the name
        (["::ffff:169.254.169.254"], [], False),
        (["10.0.0.1"], ["10.0.0.0/8"], True),
        (["169.254.169.254"], ["10.0.0.0/8"], False),
    ],
)
def test_a_host_is_resolved_once_and_every_answer_checked(monkeypatch, answer, networks, ok):
    resolver = Resolver(answer)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    provider = {**HTTPS, "allowed_networks": networks}
    source = confine.check("https://files.provider.test/provider-a/x.nc", provider)
    if ok:
        assert confine.addresses(source, provider) == answer
    else:
        with pytest.raises(AddressNotAllowedError) as err:
            confine.addresses(source, provider)
        assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert resolver.lookups == ["files.provider.test"]


def test_inside_an_invocation_a_host_is_resolved_once_and_a_rebinding_answer_never_used(monkeypatch):
    resolver = Resolver(["127.0.0.1"], ["169.254.169.254"])  # DNS rebinding: the second answer differs
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    provider = {**HTTPS, "allowed_networks": ["127.0.0.0/8"]}
    source = confine.check("https://files.provider.test/provider-a/x.nc", provider)
    with confine.provider_reads(60.0):
        assert confine.addresses(source, provider) == ["127.0.0.1"]  # SyncGranule's check, before any S3 call
        assert confine.addresses(source, provider) == ["127.0.0.1"]  # the transfer connects to what was checked
    assert resolver.lookups == ["files.provider.test"]
    with pytest.raises(AddressNotAllowedError):  # outside an invocation every lookup is checked again
        confine.addresses(source, provider)


def test_an_unresolvable_host_is_a_transfer_error(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    source = confine.check("https://files.provider.test/provider-a/x.nc", HTTPS)
    with pytest.raises(TransferError):
        confine.addresses(source, HTTPS)


# --- deadline --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "remaining_ms, seconds", [(300_000, 255.0), (900_000, 765.0), (20_000, 15.0), (4_000, 0.0), (0, 0.0), (-5, 0.0)]
)
def test_the_transfer_deadline_keeps_a_margin_of_the_invocations_time(remaining_ms, seconds):
    assert confine.deadline_for(remaining_ms) == pytest.approx(seconds)


def test_a_passed_deadline_refuses_before_connecting():
    deadline = confine.Deadline(at=0.0)  # long past
    with pytest.raises(ConnectionTimeoutError) as err:
        deadline.timeout(10.0, "connecting")
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR" and deadline.expired


def test_the_context_sets_the_deadline_of_the_reads_inside_it():
    assert confine.Deadline().at is None
    with confine.provider_reads(30.0):
        assert 0 < confine.Deadline().remaining() <= 30.0
    assert confine.Deadline().at is None


# --- checksum form ---------------------------------------------------------------------------------------

DATA = b"the bytes of a file"


@pytest.mark.parametrize("kind", ["md5", "SHA1", "SHA2", "SHA256", "SHA512", None])
def test_well_formed_checksums_are_their_digest(kind):
    raw = hashlib.new(checksum.algorithm(kind), DATA).digest()
    for text in (raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), f"  {raw.hex()} "):
        assert checksum.digest_bytes(kind, text) == raw
        assert checksum.matches(text, raw.hex(), kind)


@pytest.mark.parametrize(
    "kind, value",
    [
        ("md5", "addjd872342bfbf"),  # the published samples' placeholder
        ("md5", "0" * 31),
        ("md5", "0" * 33),
        ("md5", "0" * 64),  # a sha256 length under md5
        ("SHA512", "0" * 32),
        ("SHA256", "g" * 64),  # not hex
        ("md5", base64.urlsafe_b64encode(b"\xfb\xff" * 8).decode()),  # URL-safe base64 is not the CNM's
        ("md5", base64.b64encode(b"x" * 15).decode()),  # base64 of the wrong length
        ("md5", ""),
        ("md5", "   "),
        ("md5", 12345),
        ("md5", "0" * 10_000),
        ("CRC32", "00000000"),
        ("sha3", "0" * 64),
    ],
)
def test_impossible_checksums_are_validation_errors(kind, value):
    with pytest.raises(CnmValidationError) as err:
        checksum.digest_bytes(kind, value)
    assert err.value.path.endswith("checksumType") or err.value.path.endswith("checksum")
    assert len(str(err.value)) < 500
    assert not checksum.matches(value, "0" * 32, kind) if isinstance(value, str) else True


def test_translate_message_refuses_an_impossible_checksum_at_intake():
    """translate_message.translate (TranslateMessage) checks every file's checksum form: no copy is ever attempted."""
    from cnm_ingest.workflow import translate_message

    good = hashlib.md5(DATA).hexdigest()
    cnm = {
        "version": "1.6.1",
        "provider": "P",
        "collection": {"name": "C", "version": "1"},
        "submissionTime": "2024-05-01T12:00:00Z",
        "identifier": "id-1",
        "product": {
            "name": "G",
            "files": [
                {"type": "data", "uri": "s3://b/k/a.nc", "name": "a.nc", "size": 3, "checksumType": "md5",
                 "checksum": good},
                {"type": "data", "uri": "s3://b/k/b.nc", "name": "b.nc", "size": 3, "checksumType": "md5",
                 "checksum": good[:-1]},
            ],
        },
    }  # fmt: skip
    with pytest.raises(CnmValidationError, match=r"files\[\]\.checksum"):
        translate_message.translate(cnm, {}, {})
    cnm["product"]["files"][1]["checksum"] = base64.b64encode(bytes.fromhex(good)).decode()  # base64 is fine
    [g] = translate_message.translate(cnm, {}, {})
    assert [f["checksum"] for f in g["files"]] == [good, base64.b64encode(bytes.fromhex(good)).decode()]
