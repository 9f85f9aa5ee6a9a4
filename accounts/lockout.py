"""The sign-in page shown to a locked-out account or address (django-axes' lock-out response)."""

from django.conf import settings
from django.shortcuts import render


def login_locked_out(request, original_response=None, credentials=None):
    """Render the sign-in page with status 429, saying that sign-in is locked and for how long."""
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    context = {"locked_out_minutes": minutes, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
