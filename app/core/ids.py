"""Random public identifiers, and numbers typed into URLs and forms."""
import secrets
import string

BASE62 = string.digits + string.ascii_letters


def base62_token(length: int = 12) -> str:
    """Unguessable token from the OS CSPRNG; 12 base62 chars carry ~71 bits."""
    return "".join(secrets.choice(BASE62) for _ in range(length))


INT32_MAX = 2**31 - 1


def typed_int(value: str | None, maximum: int = INT32_MAX) -> int | None:
    """A number a person or a URL typed (a page, a row id in a query string or form): ASCII
    digits only, 0 … `maximum`, else None. str.isdigit() is not enough: it accepts "²", "①"
    and other scripts' digits, which int() refuses or reads, and digits past 4300 make int()
    raise; a value beyond what an INTEGER column holds names no row either."""
    if not value or len(value) > len(str(maximum)) or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= maximum else None


def page_number(value: str | None, maximum: int = 100_000) -> int:
    """A ?page= of a server-rendered page: 1 … maximum; anything else is the first page."""
    number = typed_int(value, maximum=10**9)
    return min(max(number or 1, 1), maximum)
