"""统一社会信用代码 (GB 32100-2015): 18 characters, the last one a check character over the first 17."""
from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {ch: i for i, ch in enumerate(CHARSET)}


def check_character(first17: str) -> str:
    total = sum(_VALUE[ch] * weight for ch, weight in zip(first17, WEIGHTS))
    check = 31 - total % 31
    return CHARSET[0 if check == 31 else check]


def normalize(code: str) -> str:
    return (code or "").strip().upper()


def is_valid_uscc(code: str) -> bool:
    code = normalize(code)
    if len(code) != 18 or any(ch not in _VALUE for ch in code):
        return False
    return check_character(code[:17]) == code[17]
