from __future__ import annotations

import pytest

from airflow_provider_flink_vvp.api import signing

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# The worked example of the public V3 signature guide.
GUIDE_HEADERS = [
    ("host", "ecs.cn-shanghai.aliyuncs.com"),
    ("x-acs-action", "RunInstances"),
    ("x-acs-version", "2014-05-26"),
    ("x-acs-date", "2023-10-26T10:22:32Z"),
    ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
    ("x-acs-content-sha256", EMPTY_SHA256),
]
GUIDE_QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
GUIDE_CANONICAL = (
    "POST\n/\n"
    "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
    "host:ecs.cn-shanghai.aliyuncs.com\n"
    "x-acs-action:RunInstances\n"
    f"x-acs-content-sha256:{EMPTY_SHA256}\n"
    "x-acs-date:2023-10-26T10:22:32Z\n"
    "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
    "x-acs-version:2014-05-26\n"
    "\n"
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
    f"{EMPTY_SHA256}"
)


def test_guide_vector_canonical_request_string_to_sign_and_signature() -> None:
    signed = signing.select_signed_headers(signing.normalize_headers(GUIDE_HEADERS))
    canonical = signing.canonical_request("POST", "/", GUIDE_QUERY, signed, signing.hex_sha256(b""))
    assert canonical == GUIDE_CANONICAL
    to_sign = signing.string_to_sign(canonical)
    assert to_sign == "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert signing.signature("YourAccessKeySecret", to_sign) == (
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_guide_vector_authorization_header() -> None:
    authorization = signing.sign(
        method="POST",
        canonical_uri="/",
        query=GUIDE_QUERY,
        headers=GUIDE_HEADERS,
        payload_hash=EMPTY_SHA256,
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_sdk_vector_with_repeated_header_and_empty_query_value() -> None:
    headers = [("x-acs-test", "http"), ("x-acs-TEST", "https")]
    payload_hash = "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23"
    signed = signing.select_signed_headers(signing.normalize_headers(headers))
    canonical = signing.canonical_request("GET", "/", {"test": "ok", "empty": ""}, signed, payload_hash)
    assert canonical == f"GET\n/\nempty=&test=ok\nx-acs-test:http,https\n\nx-acs-test\n{payload_hash}"
    authorization = signing.sign(
        method="GET",
        canonical_uri="/",
        query={"test": "ok", "empty": ""},
        headers=headers,
        payload_hash=payload_hash,
        access_key_id="acesskey",
        access_key_secret="secret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,"
        "Signature=d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a/b c", "a%2Fb%20c"),
        ("../x", "..%2Fx"),
        ("A-Za-z0-9-_.~", "A-Za-z0-9-_.~"),
        ("*+=&?#%", "%2A%2B%3D%26%3F%23%25"),
        ("作业", "%E4%BD%9C%E4%B8%9A"),
    ],
)
def test_percent_encode_keeps_only_unreserved_characters(raw: str, encoded: str) -> None:
    assert signing.percent_encode(raw) == encoded


def test_canonical_query_sorts_by_name_and_encodes_names_and_values() -> None:
    query = {"b": "x y", "a": "1/2", "c*": "", "Z": "*"}
    assert signing.canonical_query_string(query) == "Z=%2A&a=1%2F2&b=x%20y&c%2A="
    assert signing.canonical_query_string({}) == ""


def test_headers_are_lowercased_trimmed_and_repeated_values_sorted() -> None:
    normalized = signing.normalize_headers([("X-Acs-B", " 2 "), ("x-acs-b", "1"), ("Host", "h"), ("Accept", "a")])
    assert normalized == {"x-acs-b": "1,2", "host": "h", "accept": "a"}
    assert signing.select_signed_headers(normalized) == {"host": "h", "x-acs-b": "1,2"}


def test_content_type_is_signed_by_default_and_other_headers_are_not() -> None:
    normalized = signing.normalize_headers(
        [("Content-Type", "application/json"), ("workspace", "ws"), ("user-agent", "u")]
    )
    assert list(signing.select_signed_headers(normalized)) == ["content-type"]


def test_a_verifier_can_sign_any_declared_header_set() -> None:
    normalized = signing.normalize_headers([("host", "h"), ("workspace", "ws"), ("x-acs-date", "d")])
    assert signing.select_signed_headers(normalized, ["workspace", "host"]) == {"host": "h", "workspace": "ws"}


def test_non_ascii_header_values_and_query_names_change_the_signature() -> None:
    def signed(name: str, value: str) -> str:
        return signing.sign(
            method="GET",
            canonical_uri="/",
            query={name: value},
            headers=[("x-acs-label", value)],
            payload_hash=EMPTY_SHA256,
            access_key_id="id",
            access_key_secret="secret",
        )

    assert signed("名字", "值") != signed("名字", "值2")
    canonical = signing.canonical_request("GET", "/", {"名字": "值"}, {"x-acs-label": "值"}, EMPTY_SHA256).splitlines()
    assert canonical[2] == "%E5%90%8D%E5%AD%97=%E5%80%BC"
    assert canonical[3] == "x-acs-label:值"


def test_empty_canonical_uri_becomes_slash() -> None:
    assert signing.canonical_request("get", "", {}, {}, EMPTY_SHA256).startswith("GET\n/\n\n")


def test_parse_authorization_round_trips_and_rejects_incomplete_values() -> None:
    value = signing.authorization_header("AKID", {"host": "h", "x-acs-date": "d"}, "abc")
    assert signing.parse_authorization(value) == ("AKID", ["host", "x-acs-date"], "abc")
    with pytest.raises(ValueError, match="algorithm"):
        signing.parse_authorization("HMAC-SHA1 Credential=a,SignedHeaders=b,Signature=c")
    with pytest.raises(ValueError, match="Signature"):
        signing.parse_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host")
