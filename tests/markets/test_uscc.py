import pytest

from app.markets.uscc import check_character, is_valid_uscc


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000802100433B", "91450403MA5N000011",
                                  " 91350100m000100y43 "])
def test_valid_codes(code):
    assert is_valid_uscc(code)


@pytest.mark.parametrize("code", [
    "91350100M000100Y44",   # wrong check character
    "91110000802100433A",   # wrong check character
    "91350100M000100Y4",    # 17 characters
    "91350100M000100Y430",  # 19 characters
    "9135010OM000100Y43",   # O is not in the charset
    "91350100I000100Y43",   # nor is I
    "",
])
def test_invalid_codes(code):
    assert not is_valid_uscc(code)


def test_check_character_31_maps_to_zero():
    # Find a 17-char body whose weighted sum is 0 mod 31: "0" * 17 gives 31 - 0 = 31 -> "0".
    assert check_character("0" * 17) == "0"
    assert is_valid_uscc("0" * 18)


def test_merchant_with_bad_uscc_is_refused(client, auth, regions):
    user = auth.login("m1")
    response = client.post("/api/v1/merchants", headers=user.headers, json={
        "name": "某店", "kind": "个体工商户", "uscc": "91350100M000100Y44", "operator_name": "张三"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "USCC_INVALID"
