"""Random public identifiers."""
import secrets
import string

BASE62 = string.digits + string.ascii_letters


def base62_token(length: int = 12) -> str:
    """Unguessable token from the OS CSPRNG; 12 base62 chars carry ~71 bits."""
    return "".join(secrets.choice(BASE62) for _ in range(length))
