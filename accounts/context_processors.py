"""Template context every page needs: elderly mode (适老化) and the language switch."""

from django.http import HttpRequest

ELDERLY_COOKIE = "elderly_mode"


def display_preferences(request: HttpRequest) -> dict:
    """Elderly mode follows the user's stored choice, or a cookie before login."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        elderly = user.elderly_mode
    else:
        elderly = request.COOKIES.get(ELDERLY_COOKIE) == "1"
    return {"elderly_mode": elderly}
